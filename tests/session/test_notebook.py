"""The notebook flows in a real IPython shell with top-level await (autoawait), against the emulator."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = [pytest.mark.integration]

IPython = pytest.importorskip("IPython")


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    sh.autoawait = True
    yield sh
    sh.run_cell("if emu._listeners:\n    await emu.__aexit__(None, None, None)")  # unless a cell closed it
    InteractiveShell.clear_instance()


def run(shell, code: str):
    result = shell.run_cell(textwrap.dedent(code))
    result.raise_error()
    return result.result


def test_notebook_flow(shell, monkeypatch) -> None:
    monkeypatch.delenv("ODAPI_PROGRESS", raising=False)
    run(
        shell,
        """
        from odapi_async import OpenDental, Hub
        from odapi_async.emulator import Emulator
        emu = Emulator(seed=5, patients=150, developer_key="dev", customer_keys={"cust": "full"})
        await emu.__aenter__()
        od = OpenDental("dev", "cust", endpoints=emu.endpoints, modes=("local",), hub=Hub())
        """,
    )
    from odapi_async._paging import progress as _progress

    assert _progress.progress_wanted(None) is True  # inside IPython: progress is on by default
    listing = run(shell, "od.appointments.list(AptStatus='Scheduled')")
    assert repr(listing).startswith("<Paginator appointments.list filters=[AptStatus] mode=local")
    rows = run(shell, "await od.appointments.list().collect(max_rows=30, progress=False)")
    assert len(rows) == 30
    first = run(shell, "await od.patients.list().first()")
    assert first is not None and "PatNum=" in repr(first)
    stats = run(shell, "od.throttle_stats()")
    formatted, _ = shell.display_formatter.format(stats)
    assert "text/html" in formatted and "<table>" in formatted["text/html"]
    assert "cust" not in repr(run(shell, "od"))
    pytest.importorskip("polars")
    df = run(shell, "await od.appointments.list().to_polars(max_rows=50, progress=False)")
    assert df.height == 50
    run(shell, "await od.aclose()")


def test_the_example_notebook_runs_top_to_bottom(shell, monkeypatch) -> None:
    import json
    from pathlib import Path

    pytest.importorskip("polars")
    monkeypatch.setenv(
        "ODAPI_PROGRESS", "0"
    )  # keep the test's output quiet; the cell still passes progress=True
    notebook = json.loads((Path(__file__).resolve().parents[2] / "examples" / "notebook.ipynb").read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert len(code) >= 8
    results = [run(shell, "".join(cell["source"])) for cell in code]
    rows_len, listing = results[4]
    assert rows_len == 200 and "rows_fetched=" in repr(listing)
    assert results[5]["AptStatus"] is not None  # the schema cell
    assert results[7][0] == 1 and results[7][1] == 200
