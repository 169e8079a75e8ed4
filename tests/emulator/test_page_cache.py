"""Kept list pages (``_practice.page_cache``): the same page again is not rendered again, and any change to the
data, through the API, the emulator's own connection, another connection or the schema, is seen at once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import headers

from odapi_async.emulator._practice.db import Practice
from odapi_async.emulator._practice.page_cache import PageCache
from odapi_async.emulator._practice.seed import create_store

PAGE = "SELECT json_group_array(PatNum) FROM (SELECT PatNum FROM patients ORDER BY PatNum LIMIT ?)"


def _page(db: sqlite3.Connection, cache: PageCache, limit: int = 3) -> bytes:
    return cache.get((PAGE, limit), lambda: db.execute(PAGE, (limit,)).fetchone()[0].encode())


def test_a_page_asked_again_is_served_from_memory_until_a_row_changes() -> None:
    db = create_store(None, seed=1, patients=5)
    cache = PageCache(db)
    first = _page(db, cache)
    assert _page(db, cache) == first and (cache.hits, cache.misses) == (1, 1)
    db.execute("DELETE FROM patients WHERE PatNum = 1")
    assert _page(db, cache) != first and cache.misses == 2


def test_another_connections_commit_and_a_schema_change_are_seen(tmp_path: Path) -> None:
    db = create_store(str(tmp_path / "p.db"), seed=1, patients=5)
    cache = PageCache(db)
    first = _page(db, cache)
    other = sqlite3.connect(tmp_path / "p.db", isolation_level=None)
    other.execute("UPDATE patients SET PatNum = 100 WHERE PatNum = 1")  # total_changes of `db` does not move
    assert _page(db, cache) != first and cache.hits == 0
    again = _page(db, cache)
    other.execute("CREATE INDEX patients_lname ON patients (LName)")
    assert _page(db, cache) == again and cache.misses == 3  # rendered again, the same rows
    other.close()


def test_nothing_is_kept_inside_a_transaction() -> None:
    """A rollback takes rows back but not the change count: pages read inside a transaction are not kept."""
    db = create_store(None, seed=1, patients=5)
    cache = PageCache(db)
    before = _page(db, cache)
    db.execute("BEGIN")
    db.execute("DELETE FROM patients WHERE PatNum = 1")
    assert _page(db, cache) != before
    db.execute("ROLLBACK")
    assert _page(db, cache) == before


def test_the_budget_bounds_what_is_kept() -> None:
    db = create_store(None, seed=1, patients=20)
    cache = PageCache(db, budget=40)
    pages = [_page(db, cache, limit) for limit in range(1, 8)]
    assert cache._bytes <= 40 and len(cache._pages) < len(pages)
    assert _page(db, cache, 7) == pages[-1]  # the latest is kept
    disabled = PageCache(db, budget=0)
    assert _page(db, disabled) == pages[2] and disabled.hits == disabled.misses == 0


def test_practice_pages_are_exact_after_writes_through_its_own_methods() -> None:
    practice = Practice(create_store(None, seed=1, patients=30))
    res = practice.cat.resources["patients"]

    def page() -> bytes:
        return practice.list_json(res, [], [], limit=5, offset=0, with_sdt=False)

    first = page()
    assert page() == first and practice.pages.hits == 1
    practice.update(res, 1, {"LName": "Cached"})
    changed = page()
    assert b'"LName":"Cached"' in changed
    practice.delete(res, 2)
    assert page() != changed and page() == page()


@pytest.mark.integration
@pytest.mark.asyncio(loop_scope="session")
async def test_api_writes_show_in_the_next_page(emu, client) -> None:
    remote, local = emu.endpoints["remote"], emu.endpoints["local"]
    url = local + "/patients"
    first = (await client.get(url, params={"Limit": 5}, headers=headers())).json()
    assert (await client.get(url, params={"Limit": 5}, headers=headers())).json() == first
    num = first[0]["PatNum"]
    old = first[0]["FName"]
    r = await client.put(f"{local}/patients/{num}", json={"FName": "Pagecache"}, headers=headers())
    assert r.status_code == 200, r.text
    try:
        now = (await client.get(url, params={"Limit": 5}, headers=headers())).json()
        assert now[0]["FName"] == "Pagecache" and [p["PatNum"] for p in now] == [p["PatNum"] for p in first]
        # the Remote listener renders the same rows (its own SQL, its own entries)
        far = (
            await client.get(remote + "/patients", params={"Limit": 5}, headers=headers("cust-ent"))
        ).json()
        assert far[0]["FName"] == "Pagecache"
    finally:
        emu.db.execute("UPDATE patients SET FName = ? WHERE PatNum = ?", (old, num))
    back = (await client.get(url, params={"Limit": 5}, headers=headers())).json()
    assert back == first  # a write on the emulator's connection by the test itself is seen too
