"""A stream's memory of the keys it yielded stays bounded while keys ascend, and exact when they do not."""

from __future__ import annotations

import httpx
import pytest

from odapi_async._paginate import _SeenKeys


def test_ascending_keys_are_held_in_bounded_memory() -> None:
    seen = _SeenKeys()
    for start in range(0, 1_000_000, 1000):
        page = list(range(start, start + 1000))
        assert seen.all_new(page)
        seen.add(page)
    assert len(seen) <= _SeenKeys.KEEP + 1000  # not a million keys
    assert 5 in seen and 999_999 in seen and 1_000_000 not in seen  # forgotten keys still count as seen
    assert seen.connects([10, 20]) and not seen.connects([2_000_000])
    assert not seen.all_new([999_998, 1_000_001])


def test_keys_out_of_order_are_never_forgotten() -> None:
    seen = _SeenKeys()
    seen.add([5, 6, 7])
    seen.add([3, 4])  # not ascending: from now on every key is held exactly
    for start in range(100, 100 + 3 * _SeenKeys.KEEP, 1000):
        seen.add(list(range(start, start + 1000)))
    assert len(seen) == 5 + 3 * _SeenKeys.KEEP
    assert 1 not in seen  # no floor is trusted once the order broke


async def test_a_long_stream_with_deletions_behind_the_cursor_is_exact(od, mock_api, monkeypatch) -> None:
    # Past the exactly held window, a resync that steps back far relies on the floor: still every row once.
    monkeypatch.setattr(_SeenKeys, "KEEP", 2000)
    table = list(range(1, 30_001))
    served = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal served, table
        offset, limit = int(request.url.params.get("Offset", 0)), int(request.url.params["Limit"])
        served += 1
        if served == 15:  # 3 000 rows vanish behind the cursor: the next page has lost its place
            table = table[:9000] + table[12_000:]
        page = table[offset : offset + limit]
        return httpx.Response(200, json=[{"AptNum": k, "PatNum": 1} for k in page])

    mock_api.get("/appointments").mock(side_effect=answer)
    got = [a.AptNum async for a in od.with_options(read_ahead=0).appointments.list()]
    assert len(got) == len(set(got))  # nothing twice
    assert got == sorted(got)
    kept = set(table)  # every row that existed throughout was yielded
    assert kept <= set(got)


@pytest.mark.parametrize("keep", [3, 50])
def test_partial_overlap_pages_are_deduplicated(keep: int, monkeypatch) -> None:
    monkeypatch.setattr(_SeenKeys, "KEEP", keep)
    seen = _SeenKeys()
    seen.add([1, 2, 3])
    assert not seen.all_new([3, 4])
    seen.add([4])
    assert 3 in seen and 4 in seen
