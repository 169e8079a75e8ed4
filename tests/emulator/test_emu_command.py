"""``odapi emulator`` as a newcomer meets it: its help, what it prints, and the command it suggests working."""

from __future__ import annotations

import os
import queue
import shlex
import subprocess
import sys
import threading
import time

import pytest

from odapi_async.emulator.__main__ import parser

pytestmark = pytest.mark.integration

START_SECONDS = 60.0  # the practice is built before it listens; 20 patients take well under a second


def _read_until(proc: subprocess.Popen[str], marker: str, seconds: float) -> list[str]:
    """Lines of stdout up to the one containing ``marker``, waiting at most ``seconds`` in all.

    A thread reads (select() on a buffered pipe misses lines already in the buffer); the queue bounds the wait.
    """
    assert proc.stdout is not None
    stream = proc.stdout
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.001))
        except queue.Empty:
            break
        if line is None:
            break
        got.append(line)
        if marker in line:
            return got
    raise AssertionError(f"no line with {marker!r} within {seconds} s; got {got}")


def test_every_flag_has_help_and_the_usage_names_the_command() -> None:
    p = parser("odapi emulator")
    assert p.format_usage().startswith("usage: odapi emulator ")
    flags = [a for a in p._actions if a.option_strings and a.dest != "help"]
    assert len(flags) >= 15 and all(a.help for a in flags), [a.dest for a in flags if not a.help]


def test_odapi_emulator_help_is_its_own() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "odapi_async.cli", "emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and run.stdout.startswith("usage: odapi emulator ")
    assert "--customer-key KEY=TIER" in run.stdout and "python -m" not in run.stdout.splitlines()[0]


def test_the_printed_command_works_as_pasted() -> None:
    cmd = [sys.executable, "-m", "odapi_async.cli", "emulator", "--patients", "20"]
    cmd += ["--port-local", "0", "--port-service", "0", "--port-remote", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = _read_until(proc, "odapi get ", START_SECONDS)
        text = "\n".join(lines)
        for name in ("local", "service", "remote"):
            assert f"  {name} " in text and "/api/v1" in text
        assert "developer key   dev" in text and "cust-full (full), cust-ro (read_all)" in text
        exports = dict(
            line.strip().removeprefix("export ").split("=", 1)
            for line in lines
            if line.strip().startswith("export ")
        )
        assert exports == {"ODAPI_DEVELOPER_KEY": "dev", "ODAPI_CUSTOMER_KEY": "cust-full"}
        command = shlex.split(next(line for line in lines if "odapi get " in line).strip())
        assert command[:3] == ["odapi", "get", "providers"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ODAPI_")} | exports
        run = subprocess.run(
            [sys.executable, "-m", "odapi_async.cli", *command[1:]],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        assert "ProvNum" in run.stdout and "Abbr" in run.stdout  # the table of the practice's providers
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_hundreds_of_bench_keys_print_as_one_range() -> None:
    from odapi_async.emulator.__main__ import emulator_from_args, welcome

    emu = emulator_from_args(parser().parse_args(["--bench-keys", "300", "--customer-key", "cust=full"]))
    text = welcome(emu)
    assert "customer keys   cust (full), bench-0 .. bench-299 (full)" in text
    assert "export ODAPI_CUSTOMER_KEY=cust" in text and "bench-17," not in text


def test_bench_keys_from_numbers_a_range_of_keys() -> None:
    """Several emulators of one benchmark each take their own slice of the offices' keys."""
    from odapi_async.emulator.__main__ import emulator_from_args, welcome

    emu = emulator_from_args(parser().parse_args(["--bench-keys", "250", "--bench-keys-from", "500"]))
    bench = [k for k in emu.customer_keys if k.startswith("bench-")]
    assert bench == [f"bench-{i}" for i in range(500, 750)]
    assert "bench-500 .. bench-749 (full)" in welcome(emu)


def test_negative_bench_keys_are_refused() -> None:
    from odapi_async.emulator.__main__ import main

    assert main(["--bench-keys", "2", "--bench-keys-from", "-1"]) == 2
