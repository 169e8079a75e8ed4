"""A stream's memory of the keys it yielded: constant while keys ascend, exact when they do not."""

from __future__ import annotations

import httpx
import pytest

from odapi_async._paging.stream import _SeenKeys


def page(start: int, count: int = 1000) -> list[int]:
    return list(range(start, start + count))


def test_ascending_keys_are_held_in_bounded_memory() -> None:
    seen = _SeenKeys()
    for start in range(0, 1_000_000, 1000):
        keys = page(start)
        assert seen.new_rows(keys, keys) == keys
    assert len(seen) <= _SeenKeys.KEEP + 1000  # not a million keys
    assert 5 in seen and 999_999 in seen and 1_000_000 not in seen
    overlap = page(999_999, 3)
    assert seen.connects(overlap) and seen.new_rows(overlap, overlap) == [1_000_000, 1_000_001]
    assert not seen.connects(page(2_000_000))


def test_keys_out_of_order_switch_to_an_exact_set_of_the_recent_ones() -> None:
    seen = _SeenKeys()
    seen.new_rows(page(100), page(100))
    shuffled = [2000, 150, 1500, 3]  # 150 was yielded; the others were not
    assert seen.new_rows(shuffled, shuffled) == [2000, 1500, 3]
    again = [3, 4]
    assert seen.new_rows(again, again) == [4]
    for start in range(10_000, 10_000 + 3 * _SeenKeys.KEEP, 1000):
        seen.new_rows(page(start), page(start))
    assert len(seen) == 1000 + 3 + 1 + 3 * _SeenKeys.KEEP  # exact: nothing forgotten any more


def test_a_page_wholly_below_the_last_key_is_judged_exactly() -> None:
    seen = _SeenKeys()
    seen.new_rows(page(0, 10), page(0, 10))
    seen.new_rows(page(20, 10), page(20, 10))
    below = page(5, 10)  # 5..14: 10..14 were never yielded (a list that is not in key order)
    assert seen.new_rows(below, below) == [10, 11, 12, 13, 14]


async def test_a_long_stream_with_deletions_behind_the_cursor_is_exact(od, mock_api, monkeypatch) -> None:
    monkeypatch.setattr(_SeenKeys, "KEEP", 2000)
    table = list(range(1, 30_001))
    served = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal served, table
        offset, limit = int(request.url.params.get("Offset", 0)), int(request.url.params["Limit"])
        served += 1
        if served == 15:  # 3 000 rows vanish behind the cursor: the next page has lost its place
            table = table[:9000] + table[12_000:]
        rows = table[offset : offset + limit]
        return httpx.Response(200, json=[{"AptNum": k, "PatNum": 1} for k in rows])

    mock_api.get("/appointments").mock(side_effect=answer)
    got = [a.AptNum async for a in od.with_options(read_ahead=0).appointments.list()]
    assert len(got) == len(set(got)) and got == sorted(got)  # nothing twice, in order
    assert set(table) <= set(got)  # every row that existed throughout


@pytest.mark.parametrize("keys", [["b", "a"], [None, 1]])
def test_keys_that_do_not_ascend_or_compare_are_still_deduplicated(keys: list[object]) -> None:
    seen = _SeenKeys()
    assert seen.new_rows(keys, keys) == keys
    assert seen.new_rows(keys, keys) == []
