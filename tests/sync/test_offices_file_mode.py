"""``odapi sync`` warns when an offices file holding keys can be read by other users (issue 21, case 6)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli.clitools import odapi

from odapi_async.sync import load_offices
from odapi_async.sync._offices import exposed_keys_warning

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")

WITH_KEY = """
developer_key = "dev-cli"
[offices.north]
customer_key = "k-errors"
endpoints = {{ local = "{url}" }}
modes = ["local"]
"""
FROM_ENV = """
developer_key_env = "MY_DEV"
[offices.north]
customer_key_env = "NORTH_KEY"
"""


def offices_file(tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "offices.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("mode", "who"),
    [(0o644, "its group and every other user"), (0o640, "its group"), (0o604, "every other user")],
)
def test_a_readable_file_with_keys_gets_one_line_with_the_fix(tmp_path, mode, who) -> None:
    path = offices_file(tmp_path, WITH_KEY.format(url="http://127.0.0.1:9/api/v1"), mode)
    assert exposed_keys_warning(path, load_offices(path)) == (
        f"warning: {path} holds customer keys and {who} can read it (mode {mode:03o}): chmod 600 {path}"
    )


def test_no_warning_for_a_private_file_or_keys_from_the_environment(tmp_path) -> None:
    private = offices_file(tmp_path, WITH_KEY.format(url="http://127.0.0.1:9/api/v1"), 0o600)
    assert exposed_keys_warning(private, load_offices(private)) is None
    env_only = offices_file(tmp_path, FROM_ENV, 0o644)
    assert exposed_keys_warning(env_only, load_offices(env_only, {"MY_DEV": "d", "NORTH_KEY": "k"})) is None


def test_odapi_sync_warns_once_then_syncs(slow_emulator, tmp_path) -> None:
    path = offices_file(tmp_path, WITH_KEY.format(url=slow_emulator.endpoints["local"]), 0o644)
    args = [
        "sync",
        "--db",
        str(tmp_path / "x.sqlite"),
        "--offices",
        str(path),
        "--resources",
        "patients",
        "--json",
    ]
    run = odapi(*args)
    assert run.returncode == 0, run.stderr
    assert (
        run.stderr
        == f"warning: {path} holds customer keys and its group and every other user can read it (mode 644): chmod 600 {path}\n"
    )
    assert "k-errors" not in run.stderr + run.stdout
    assert json.loads(run.stdout)["offices"][0]["rows"] > 0
    path.chmod(0o600)
    run = odapi(*args)
    assert run.returncode == 0 and run.stderr == "", run.stderr
