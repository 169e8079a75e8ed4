"""``ODAPI_LOG=debug|info|warning`` shows the SDK's log lines on stderr; keys and patient data stay out."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from odapi_async._util import logenv as _logenv

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER_KEY = "cust-Secret-4711"
DEVELOPER_KEY = "dev-Secret-0815"
SCRIPT = f"""
import asyncio
from odapi_async import OpenDental
from odapi_async.emulator import Emulator

async def main():
    async with Emulator(patients=20, developer_key={DEVELOPER_KEY!r}, customer_keys={{{CUSTOMER_KEY!r}: "full"}}) as emu:
        async with OpenDental({DEVELOPER_KEY!r}, {CUSTOMER_KEY!r}, modes=("local",), endpoints=emu.endpoints) as od:
            rows = await od.patients.list(LName="Zyxwvutsr", Birthdate="1961-02-03").collect()
            pat = await od.patients.get(1)
            print(len(rows), pat.LName)

asyncio.run(main())
"""


def run(value: str | None, argv: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAPI_")}
    env["PYTHONPATH"] = str(ROOT)
    if value is not None:
        env["ODAPI_LOG"] = value
    return subprocess.run(
        argv or [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
    )


def test_debug_shows_each_request_and_no_key_or_patient_data() -> None:
    result = run("debug")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    requests = [line for line in lines if " DEBUG odapi_async: GET /patients" in line]
    assert len(requests) >= 2, result.stderr  # the list and the get, method, path, mode and status
    assert any("[local] -> 200" in line for line in requests)
    last_name = result.stdout.split()[1]
    for secret in (CUSTOMER_KEY, DEVELOPER_KEY, "Zyxwvutsr", "1961-02-03", last_name):
        assert secret not in result.stderr


@pytest.mark.parametrize("value", [None, "", "off", "warning", "WARNING"])
def test_quieter_levels_show_no_request_lines(value: str | None) -> None:
    result = run(value)
    assert result.returncode == 0, result.stderr
    assert "DEBUG" not in result.stderr and "GET /patients" not in result.stderr


def test_an_unknown_word_warns_once_and_changes_nothing() -> None:
    result = run("verbose")
    assert result.returncode == 0, result.stderr
    assert "ODAPI_LOG='verbose': expected one of debug, info, warning (or off); ignored" in result.stderr
    assert "GET /patients" not in result.stderr


def test_the_handler_is_attached_once_at_the_level_asked() -> None:
    logger = logging.getLogger("odapi_async")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        first = _logenv.configure_from_env({"ODAPI_LOG": "info"})
        second = _logenv.configure_from_env({"ODAPI_LOG": "debug"})
        assert first is not None and first is second and logger.handlers.count(first) == 1
        assert logger.level == logging.DEBUG and logger.propagate is False
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _logenv.configure_from_env({}) is None
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


def test_the_odapi_command_honours_it() -> None:
    """The CLI's own handler (rich, on stderr) takes ODAPI_LOG's level when --debug is not given: the retries
    of a request nothing answers are shown; without ODAPI_LOG only the one-line error is."""
    argv = [sys.executable, "-m", "odapi_async.cli", "get", "patients", "1",
            "--endpoint", "local=http://127.0.0.1:9/api/v1", "--developer-key", "d", "--customer-key", "c"]  # fmt: skip
    shown = run("debug", argv)
    assert shown.returncode == 1
    assert "DEBUG" in shown.stderr and "retry 1 in" in shown.stderr
    assert "Traceback" not in shown.stderr
    quiet = run(None, argv)
    assert quiet.returncode == 1 and "DEBUG" not in quiet.stderr and "retry 1 in" not in quiet.stderr
