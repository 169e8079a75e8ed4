"""The release step, whole: build the sdist and wheel, ``twine check``, install the wheel into a fresh venv,
``odapi`` without extras (one line, exit 2), then with the ``cli`` extra ``odapi --help`` and ``odapi demo``.

It runs ``scripts/release.py`` (what ``nox -s release`` runs), so the suite proves the release a user gets.
The wheel's dependencies come from the package index pip is set up with (measured here: ~20 s in all).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow(
        "builds an sdist and a wheel, installs the wheel twice into a fresh venv: ~25 s, longer cold"
    ),
    pytest.mark.timeout(300),  # a cold pip cache on a fresh CI machine downloads the dependencies
]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    pytest.importorskip("build", reason="the dev extra installs build")
    pytest.importorskip("twine", reason="the dev extra installs twine")
    base = tmp_path_factory.mktemp("release")
    result = subprocess.run(
        [sys.executable, "scripts/release.py", "--dist", str(base / "dist"), "--work", str(base / "work"),
         "--demo-patients", "100"],
        capture_output=True, text=True, timeout=280, cwd=ROOT,
    )  # fmt: skip
    return result, base


def test_the_release_builds_installs_and_runs_the_demo(release) -> None:
    result, _ = release
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "-m twine ..." in out  # the twine check ran (and passed: the script stops at a failure)
    assert (
        "without extras, odapi says: error: the odapi command needs the 'cli' extra (click is not installed): "
        "pip install 'odapi-async[cli]'"
    ) in out
    assert "odapi demo from the installed wheel synced into demo.sqlite" in out
    assert (release[1] / "work" / "demo.sqlite").stat().st_size > 0


def test_the_wheel_metadata(release) -> None:
    result, base = release
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (base / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode().splitlines()
    for wanted in (
        "Classifier: Typing :: Typed",
        "Classifier: Programming Language :: Python :: 3.10",
        "License-Expression: MIT",
        "Project-URL: Source, https://github.com/odapi-async/odapi-async",
        "Description-Content-Type: text/markdown",
    ):
        assert wanted in lines
    assert any(line.startswith("Author: ") for line in lines)
    assert any(line.startswith("Keywords: ") for line in lines)
