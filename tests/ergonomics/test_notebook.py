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
    sh.run_cell("await emu.__aexit__(None, None, None)")
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
    from odapi_async import _progress

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
