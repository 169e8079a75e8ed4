"""Without an extra, each feature that needs it says so in one line naming the extra: never a traceback.

The subprocess tests hide modules at interpreter start (``blocker/sitecustomize.py``), as on a machine where
they are not installed; the real wheel without extras is tested in ``tests/release/test_wheel_install.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import odapi_async
from odapi_async import MissingExtra, OpenDental, RedisThrottle
from odapi_async.events import RedisEventStore
from odapi_async.sync import FleetLeases

ROOT = Path(__file__).resolve().parents[2]
BLOCKER = Path(__file__).resolve().parent / "blocker"
SCRIPTS = Path(sys.executable).parent


def run(argv: list[str], block: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAPI_")}
    env["PYTHONPATH"] = os.pathsep.join([str(BLOCKER), str(ROOT), env.get("PYTHONPATH", "")])
    env["ODAPI_TEST_BLOCK"] = block
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


def assert_one_line(result: subprocess.CompletedProcess[str], extra: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"'{extra}' extra" in lines[0]
    assert f"pip install 'odapi-async[{extra}]'" in lines[0]


def test_the_blocker_hides_a_module() -> None:
    """The shim works (else every test below would pass for the wrong reason)."""
    result = run([sys.executable, "-c", "import click"], block="click")
    assert result.returncode == 1 and "ModuleNotFoundError" in result.stderr


@pytest.mark.parametrize("block", ["click", "rich", "click,rich,starlette,uvicorn"])
@pytest.mark.parametrize("args", [["--help"], ["demo"], ["get", "patients"]])
def test_odapi_without_the_cli_extra(block: str, args: list[str]) -> None:
    result = run([sys.executable, "-m", "odapi_async.cli", *args], block=block)
    assert_one_line(result, "cli")
    assert result.stderr.startswith("error: the odapi command needs the 'cli' extra")


def test_the_odapi_script_without_the_cli_extra() -> None:
    """The installed console script (the entry point itself, not ``-m``)."""
    script = SCRIPTS / "odapi"
    if not script.exists():
        pytest.skip("no odapi script beside this interpreter (not an installed environment)")
    assert_one_line(run([str(script), "--help"], block="click"), "cli")


@pytest.mark.parametrize("block", ["starlette", "uvicorn"])
def test_python_m_emulator_without_the_emulator_extra(block: str) -> None:
    result = run([sys.executable, "-m", "odapi_async.emulator"], block=block)
    assert_one_line(result, "emulator")
    assert f"({block} is not installed)" in result.stderr


@pytest.mark.parametrize("command", ["demo", "emulator"])
def test_odapi_commands_without_the_emulator_extra(command: str) -> None:
    result = run([sys.executable, "-m", "odapi_async.cli", command], block="starlette")
    assert_one_line(result, "emulator")


def test_the_sdk_imports_with_no_extra() -> None:
    """The base install: every public module imports; only using a feature asks for its extra."""
    code = (
        "import odapi_async, odapi_async.blocking, odapi_async.events, odapi_async.sync, odapi_async.emulator, "
        "odapi_async.resources, odapi_async.cli\n"
        "from odapi_async import OpenDental\n"
        "OpenDental('d', 'c', modes=('remote',))\n"
        "try:\n"
        "    from odapi_async.emulator import Emulator\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    blocked = "click,rich,starlette,uvicorn,polars,pandas,redis,ipywidgets,IPython,tomli,psycopg"
    result = run([sys.executable, "-c", code], block=blocked)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "the emulator needs the 'emulator' extra (starlette is not installed): "
        "pip install 'odapi-async[emulator]'"
    )


@pytest.mark.parametrize("library", ["polars", "pandas"])
async def test_dataframes_without_their_extra(library: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, library, None)
    # Nothing listens there: the check comes before any request.
    async with OpenDental("d", "c", modes=("local",), endpoints={"local": "http://127.0.0.1:9/api/v1"}) as od:
        with pytest.raises(MissingExtra) as caught:
            await getattr(od.patients.list(), f"to_{library}")()
    assert str(caught.value) == (
        f"to_{library}() needs the '{library}' extra ({library} is not installed): "
        f"pip install 'odapi-async[{library}]'"
    )
    assert isinstance(caught.value, ImportError)


@pytest.mark.parametrize(
    ("make", "feature"),
    [
        (lambda: RedisThrottle("redis://127.0.0.1:6379/0"), "RedisThrottle"),
        (lambda: FleetLeases("redis://127.0.0.1:6379/0"), "FleetLeases (odapi sync --redis)"),
        (lambda: RedisEventStore("redis://127.0.0.1:6379/0"), "RedisEventStore"),
    ],
)
def test_redis_features_without_the_redis_extra(make, feature: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(MissingExtra, match=r"^" + feature.replace("(", r"\(").replace(")", r"\)")) as caught:
        make()
    assert "pip install 'odapi-async[redis]'" in str(caught.value)


def test_missing_extra_is_exported() -> None:
    assert "MissingExtra" in odapi_async.__all__


def test_odapi_sync_redis_without_the_redis_extra() -> None:
    result = run(
        [sys.executable, "-m", "odapi_async.cli", "sync", "--redis", "redis://127.0.0.1:9/0",
         "--customer-key", "c", "--developer-key", "d"],
        block="redis",
    )  # fmt: skip
    assert_one_line(result, "redis")
    assert result.stderr.startswith("error: FleetLeases (odapi sync --redis) needs the 'redis' extra")


def test_progress_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    from odapi_async._paging.progress import progress_wanted

    monkeypatch.setitem(sys.modules, "rich", None)
    with pytest.raises(
        MissingExtra, match=r"^progress=True needs the 'notebook' extra \(rich is not installed\)"
    ):
        progress_wanted(True)


def test_odapi_sync_postgres_without_the_postgres_extra() -> None:
    result = run(
        [sys.executable, "-m", "odapi_async.cli", "sync", "--db", "postgresql://u:pw-never-shown@127.0.0.1:9/db",
         "--customer-key", "c", "--developer-key", "d"],
        block="psycopg",
    )  # fmt: skip
    assert_one_line(result, "postgres")
    assert result.stderr.startswith(
        "error: PostgresStore (odapi sync --db postgresql://...) needs the 'postgres'"
    )
    assert "pw-never-shown" not in result.stderr
