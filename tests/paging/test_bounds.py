"""Bounded collection, first(), take(), progress and reprs against the emulator over real sockets."""

from __future__ import annotations

import io
from typing import Any

import pytest
from emulators import emulator_fixture
from practice import PRACTICE, served, session

from odapi_async._paging import progress as _progress
from odapi_async._paging.progress import progress_wanted

emu = emulator_fixture(**PRACTICE)

pytestmark = [pytest.mark.integration]
module_loop = pytest.mark.asyncio(loop_scope="module")


@module_loop
async def test_collect_max_rows_stops_after_the_pages_it_needs_on_remote(emu) -> None:
    expected = [r[0] for r in emu.db.execute("SELECT AptNum FROM appointments ORDER BY AptNum LIMIT 150")]
    async with session(emu, "remote") as od:
        before = served(emu, "remote")
        rows = await od.appointments.list().collect(max_rows=150)
        assert served(emu, "remote") - before == 2  # pages of 100: two requests, not the whole table
    assert [a.AptNum for a in rows] == expected


@module_loop
async def test_a_small_bound_asks_for_a_small_page(emu) -> None:
    async with session(emu, "local") as od:
        before = served(emu, "local")
        rows = await od.appointments.list().collect(max_rows=5)
        assert len(rows) == 5 and served(emu, "local") - before == 1
        first = await od.appointments.list().first()
        assert first is not None and first.AptNum == rows[0].AptNum
        taken = od.appointments.list().take(1200)
        got = [a.AptNum async for a in taken]
        assert len(got) == 1200 and len(set(got)) == 1200
        assert len(await taken.collect()) == 1200 and len(await taken) == 1200
        pages = [len(p) async for p in taken.pages()]
        assert pages == [1000, 200]
    with pytest.raises(ValueError, match="max_rows"):
        await od.appointments.list().collect(max_rows=0)


@module_loop
async def test_first_of_an_empty_list_is_none(emu) -> None:
    async with session(emu) as od:
        assert await od.appointments.list(PatNum=999_999).first() is None
        assert await od.appointments.list(PatNum=999_999).collect(max_rows=3) == []


@module_loop
async def test_repr_names_filters_but_never_their_values(emu) -> None:
    async with session(emu) as od:
        name = emu.db.execute("SELECT LName FROM patients LIMIT 1").fetchone()[0]
        listing = od.patients.list(LName=name, Limit=50)
        text = repr(listing)
        assert text == "<Paginator patients.list filters=[LName] mode=local page_size=50 rows_fetched=0>"
        rows = await listing.collect(max_rows=10)
        assert rows and f"rows_fetched={len(rows)}" in repr(listing)
        assert name not in repr(listing)
        row = rows[0]
        # Compact: fields at their defaults (0, "", None) are left out of a row's repr.
        assert repr(row).startswith("Patient(") and "=''" not in repr(row) and "=None" not in repr(row)
        assert "key" not in repr(od).replace("key_id", "") and "cust-erg" not in repr(od)
        assert "mode=local" in repr(od) and "tier=full" in repr(od)


@module_loop
async def test_progress_draws_rows_and_pages_when_asked(emu, monkeypatch) -> None:
    from rich.console import Console

    out = io.StringIO()
    monkeypatch.setattr(_progress, "make_console", lambda: Console(file=out, width=120))
    async with session(emu) as od:
        rows = await od.appointments.list(Limit=200).collect(max_rows=700, progress=True)
    assert len(rows) == 700
    text = out.getvalue()
    assert "appointments.list" in text and "700/700 rows" in text and "4 pages" in text


@module_loop
async def test_no_progress_for_a_one_page_list(emu, monkeypatch) -> None:
    out = io.StringIO()
    from rich.console import Console

    monkeypatch.setattr(_progress, "make_console", lambda: Console(file=out, width=120))
    async with session(emu) as od:
        await od.appointments.list().collect(max_rows=20, progress=True)
    assert out.getvalue() == ""


def test_progress_is_off_in_scripts_unless_asked(monkeypatch) -> None:
    monkeypatch.delenv("ODAPI_PROGRESS", raising=False)
    monkeypatch.delattr("sys.ps1", raising=False)
    assert progress_wanted(None) is False  # pytest is a script: no IPython shell, no prompt
    assert progress_wanted(True) is True and progress_wanted(False) is False
    monkeypatch.setenv("ODAPI_PROGRESS", "1")
    assert progress_wanted(None) is True
    monkeypatch.setenv("ODAPI_PROGRESS", "0")
    monkeypatch.setattr("sys.ps1", ">>> ", raising=False)
    assert progress_wanted(None) is False
    monkeypatch.delenv("ODAPI_PROGRESS")
    assert progress_wanted(None) is True  # the interactive prompt
    with pytest.raises(TypeError):
        progress_wanted("yes")  # type: ignore[arg-type]


@module_loop
async def test_throttle_stats_is_a_dict_that_draws_a_table(emu) -> None:
    from rich.console import Console

    async with session(emu, "remote") as od:
        await od.patients.list().first()
        stats = od.throttle_stats()
    assert isinstance(stats, dict) and set(stats) == {"remote"}
    assert stats["remote"].requests == 1
    html = stats._repr_html_()
    assert html.startswith("<table>") and "<th>remote</th>" in html and "requests" in html
    out = io.StringIO()
    Console(file=out, width=200).print(stats)
    assert "remote" in out.getvalue() and "throttle stats" in out.getvalue()
    assert stats.as_dicts()["remote"]["requests"] == 1


def test_in_jupyter_without_ipywidgets_progress_stays_off(monkeypatch) -> None:
    import importlib.util
    import types

    class ZMQInteractiveShell:  # what a Jupyter kernel's shell is called
        pass

    fake: Any = types.ModuleType("IPython")
    fake.get_ipython = lambda: ZMQInteractiveShell()
    monkeypatch.setitem(__import__("sys").modules, "IPython", fake)
    monkeypatch.delenv("ODAPI_PROGRESS", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ipywidgets" else real(name, *a)
    )
    assert progress_wanted(None) is False  # rich would only warn "install ipywidgets" on every redraw
    with pytest.raises(ImportError, match=r"odapi-async\[notebook\]"):
        progress_wanted(True)
    monkeypatch.setattr(importlib.util, "find_spec", real)
    if real("ipywidgets") is not None:
        assert progress_wanted(None) is True
