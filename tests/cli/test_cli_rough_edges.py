"""The command line as a new user meets it: a readable table, checked ``--fields``, an offices file whose
``endpoints`` mean what ``--endpoint`` means, Ctrl-C that says what was kept, a demo that explains itself."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clitools import DEV, _env, odapi

from odapi_async.cli import _table
from odapi_async.cli._common import Connection, office_from_entry
from odapi_async.cli._report import interrupted_lines
from odapi_async.resources import Provider
from odapi_async.sync import OfficeProgress, load_offices
from odapi_async.sync._engine import ResourceResult

pytestmark = pytest.mark.integration

BOX = set("┃┏━│┡╇└┘┌┐─")


def _base(emulator, key: str = "k-get") -> list[str]:
    return [
        "--endpoint",
        f"local={emulator.endpoints['local']}",
        "--developer-key",
        DEV,
        "--customer-key",
        key,
    ]


def _headers(line: str) -> list[str]:
    return line.split()


# -- --format table -------------------------------------------------------------------------------------------


def test_a_piped_table_is_plain_text_with_the_filled_columns_whole(emulator) -> None:
    run = odapi("get", "providers", "--format", "table", "--limit", "5", *_base(emulator))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert not BOX & set(run.stdout), "piped: no box drawing"
    headers = _headers(lines[0])
    assert headers[0] == "ProvNum", "the primary key first"
    assert set(headers) <= set(Provider.__struct_fields__), "every header is a whole field name"
    assert len(headers) >= 10
    assert set(lines[1]) == {"-", " "}
    rows = lines[2:]
    assert 1 <= len(rows) <= 5
    # every column shown has a value in some row (the empty ones are left out, and stderr says so)
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    for start, end in zip(starts, [*starts[1:], None], strict=True):
        assert any(row[start:end].strip() for row in rows), f"column at {start} is empty"
    assert "empty column(s)" in run.stderr and "--fields" in run.stderr
    assert "SSN" not in headers and "SSN (identify a person: name them in --fields to show)" in run.stderr
    named = odapi("get", "providers", "--format", "table", "--fields", "ProvNum,SSN", *_base(emulator))
    assert named.returncode == 0 and _headers(named.stdout.splitlines()[0]) == ["ProvNum", "SSN"]


def _on_a_terminal(argv: list[str], columns: int) -> tuple[int, str, str]:
    """Run with stdout on a pseudo-terminal ``columns`` wide (stderr piped apart)."""
    leader, follower = pty.openpty()
    env = {**_env(), "COLUMNS": str(columns)}
    proc = subprocess.Popen(argv, stdout=follower, stderr=subprocess.PIPE, env=env, text=False)
    os.close(follower)
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's other end closed
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, out.decode().replace("\r\n", "\n"), err.decode()


def test_a_table_on_a_terminal_keeps_to_its_width_with_whole_headers(emulator) -> None:
    code, out, err = _on_a_terminal(
        [sys.executable, "-m", "odapi_async.cli", "get", "providers", "--format", "table", "--limit", "5",
         *_base(emulator)],
        columns=120,
    )  # fmt: skip
    assert code == 0, err
    lines = [line for line in out.splitlines() if line]
    assert all(len(line) <= 120 for line in lines), max(map(len, lines))
    headers = _headers(lines[0])
    assert headers[0] == "ProvNum" and len(headers) >= 6
    assert set(headers) <= set(Provider.__struct_fields__), "no header cut to a letter"
    assert "past the terminal's width" in err


def test_choose_fits_the_width_and_cuts_long_values() -> None:
    records = [
        {"Num": i, "Note": "x" * 80, "Empty": None, **{f"F{j}": f"value{j}" for j in range(30)}}
        for i in range(3)
    ]
    layout = _table.choose(records, first="Num", width=60)
    assert layout.columns[0] == "Num" and "Empty" in layout.empty and layout.no_room
    lines = _table.render(records, layout.columns, cut=True)
    assert all(len(line) <= 60 for line in lines)
    assert "x" * (_table.MAX_CELL - 1) + "…" in lines[2]
    whole = _table.render(records, layout.columns, cut=False)
    assert "x" * 80 in whole[2], "piped: values whole"


# -- --fields ---------------------------------------------------------------------------------------------------


def test_a_misspelt_field_is_a_usage_error_with_the_closest_name(emulator) -> None:
    before = emulator.requests("k-get")
    run = odapi("get", "providers", "--fields", "Foo,ProvNum", *_base(emulator))
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("error: --fields: providers rows have no field 'Foo' (fields: ProvNum, Abbr")
    close = odapi("get", "providers", "--fields", "ProvNum,Abbrev", *_base(emulator))
    assert close.returncode == 2 and "no field 'Abbrev'; did you mean 'Abbr'?" in close.stderr
    case = odapi("get", "patients", "1", "--fields", "lname", *_base(emulator))
    assert case.returncode == 2 and "did you mean 'LName'?" in case.stderr
    assert emulator.requests("k-get") == before, "checked before any request"
    good = odapi("get", "providers", "--fields", "ProvNum,Abbr", "--limit", "1", *_base(emulator))
    assert good.returncode == 0 and list(json.loads(good.stdout)) == ["ProvNum", "Abbr"]


# -- the offices file's endpoints ----------------------------------------------------------------------------------


def test_an_offices_endpoints_mean_what_endpoint_means(tmp_path: Path) -> None:
    path = tmp_path / "offices.toml"
    path.write_text(
        """
developer_key = "dev"

[defaults]
modes = ["local", "service", "remote"]

[offices.remote_only]
customer_key = "k1"
endpoints = { remote = "http://127.0.0.1:9/api/v1" }

[offices.named_modes]
customer_key = "k2"
modes = ["local", "remote"]
endpoints = { remote = "http://127.0.0.1:9/api/v1" }

[offices.plain]
customer_key = "k3"
""",
        encoding="utf-8",
    )
    offices = {entry.name: entry for entry in load_offices(path, environ={}).offices}
    assert offices["remote_only"].modes == ("remote",), "endpoints without modes: only those modes"
    assert offices["named_modes"].modes == ("local", "remote"), "modes named: those"
    assert offices["plain"].modes == ("local", "service", "remote"), "neither: the defaults"
    session = office_from_entry(offices["remote_only"], "dev", Connection()).session()
    flag = Connection(
        developer_key="dev", customer_key="k1", endpoints={"remote": "http://127.0.0.1:9/api/v1"}
    )
    assert session.modes == flag.session().modes == ("remote",), "the file and the flag agree"


# -- Ctrl-C -------------------------------------------------------------------------------------------------------


@pytest.mark.slow("syncs two offices over the throttled Remote listener, interrupts, then runs to the end")
def test_ctrl_c_says_per_office_what_was_committed_and_that_rerunning_resumes(emulator, tmp_path) -> None:
    db = tmp_path / "interrupted.sqlite"
    offices = tmp_path / "offices.toml"
    remote = emulator.endpoints["remote"]
    offices.write_text(
        f"""
developer_key = "{DEV}"
[offices.alpha]
customer_key = "k-a"
tier = "full"
endpoints = {{ remote = "{remote}" }}
intervals = {{ full = 0.01 }}
[offices.beta]
customer_key = "k-b"
tier = "read_all"
endpoints = {{ remote = "{remote}" }}
intervals = {{ read_all = 0.05 }}
""",
        encoding="utf-8",
    )
    offices.chmod(0o600)  # it holds keys: odapi sync warns about a file others can read
    args = [sys.executable, "-m", "odapi_async.cli", "sync", "--db", str(db), "--offices", str(offices),
            "--quiet", "--resources", "appointments,patients,procedurelogs"]  # fmt: skip
    start = emulator.requests("k-b", "remote")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + 60
    while emulator.requests("k-b", "remote") - start < 5:
        assert proc.poll() is None, f"the sync ended early: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0] == "sync interrupted; committed so far:"
    by_office = {line.split(":")[0].strip(): line for line in lines[1:3]}
    assert set(by_office) == {"alpha", "beta"}
    assert re.search(r"beta: [\d,]+ rows written; resources finished: ", by_office["beta"])
    assert "stopped in " in by_office["beta"] or "not started" in by_office["beta"]
    assert lines[-2] == "Run the same command again to resume: each resource goes on from what was committed."
    assert lines[-1] == "interrupted"
    again = subprocess.run(args, capture_output=True, text=True, timeout=120, env=_env())
    assert again.returncode == 0, again.stderr


def test_the_interrupted_lines_name_finished_current_and_waiting_resources() -> None:
    office = OfficeProgress("north", resource="patients", rows=1200)
    office.results.append(ResourceResult("appointments", how="whole", rows=1000))
    lines = interrupted_lines([office, OfficeProgress("south")], ["appointments", "patients", "fees"])
    assert lines[1] == (
        "  north: 1,200 rows written; resources finished: appointments; stopped in patients (its pages so far "
        "are kept; it is asked again from its old watermark); not started: fees"
    )
    assert lines[2] == (
        "  south: 0 rows written; resources finished: none; stopped; not started: appointments, patients, fees"
    )


# -- the demo -----------------------------------------------------------------------------------------------------


@pytest.mark.slow("runs odapi demo: the emulator and a sync of two offices")
def test_the_demo_names_its_failover_warning_and_shows_the_offices_file_way(tmp_path) -> None:
    run = odapi("demo", "--patients", "60", "--db", str(tmp_path / "demo.sqlite"), timeout=120)
    assert run.returncode == 0, run.stderr
    out = " ".join(run.stdout.split())  # rich wraps at the width
    assert (
        "the warning 'service mode failed (ConnectError ...); now using remote' below is the failover" in out
    )
    assert "service mode failed" in run.stderr + run.stdout and "now using remote" in run.stderr + run.stdout
    assert "[offices.main]" in run.stdout and 'customer_key_env = "MAIN_CUSTOMER_KEY"' in run.stdout
    assert "odapi sync --offices offices.toml --db offices.sqlite" in run.stdout
