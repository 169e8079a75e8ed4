"""Build the release and prove it installs: ``nox -s release`` runs this (so does the test suite).

1. ``python -m build``: the sdist, and the wheel built from that sdist (so a file missing from the sdist fails).
2. ``twine check --strict``: the metadata and the README render as the package index will show them.
3. A fresh virtual environment gets the wheel with no extras: the SDK imports; ``odapi`` and
   ``python -m odapi_async.emulator`` print one line naming their extra and exit 2.
4. The same environment gets ``wheel[cli]``: ``odapi --help`` works and ``odapi demo`` syncs the emulator.

The version has one place, ``odapi_async/_version.py``; the script checks that the wheel carries it and that a
release version (no ``.dev``) has its own ``## [X.Y.Z]`` section in CHANGELOG.md. To publish: set the version,
move the CHANGELOG's Unreleased entries under it, run this, tag ``vX.Y.Z``, then ``twine upload dist/*``.

Usage: ``python scripts/release.py [--dist DIR] [--work DIR] [--skip-build] [--demo-patients N]``.
Dependencies of the wheel come from the package index pip is set up to use.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Every command has a bound: a build or an install that hangs fails the release instead.
COMMAND_SECONDS = 600


class ReleaseCheckFailed(Exception):
    """One step of the release did not hold; the message says which and shows the output."""


def version() -> str:
    text = (ROOT / "odapi_async" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r'__version__ = "([^"]+)"', text)
    if match is None:
        raise ReleaseCheckFailed("odapi_async/_version.py has no __version__")
    return match.group(1)


def say(message: str) -> None:
    print(f"release: {message}", flush=True)


def run(
    argv: Sequence[str | Path], *, expect: int = 0, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> str:
    """Run a command; its stdout+stderr, or :class:`ReleaseCheckFailed` unless it exits with ``expect``."""
    started = time.monotonic()
    result = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    output = result.stdout + result.stderr
    if result.returncode != expect:
        raise ReleaseCheckFailed(
            f"{' '.join(map(str, argv))} exited {result.returncode} (expected {expect}):\n{output[-4000:]}"
        )
    say(f"ok ({time.monotonic() - started:.1f} s): {' '.join(Path(str(a)).name for a in argv[:3])} ...")
    return output


def build(dist: Path) -> tuple[Path, Path]:
    """The sdist and the wheel (built from the sdist) in ``dist`` (emptied first)."""
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir(parents=True)
    run([sys.executable, "-m", "build", "--outdir", dist, ROOT])
    sdists, wheels = sorted(dist.glob("*.tar.gz")), sorted(dist.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        raise ReleaseCheckFailed(
            f"expected one sdist and one wheel in {dist}, found {sorted(dist.iterdir())}"
        )
    return sdists[0], wheels[0]


def check_wheel(wheel: Path) -> None:
    """What a user's type checker and the spec loader need is inside, with the one version and the license."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"odapi_async-{version()}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
    needed = {"odapi_async/py.typed", "odapi_async/_data/opendental-api.json", f"{info}/licenses/LICENSE"}
    if not needed <= names:
        raise ReleaseCheckFailed(f"{wheel.name} lacks {sorted(needed - names)}")
    for line in ("Classifier: Typing :: Typed", "License-Expression: MIT", f"Version: {version()}"):
        if line not in metadata.splitlines():
            raise ReleaseCheckFailed(f"{wheel.name}: METADATA has no line {line!r}")
    say(f"ok: {wheel.name} has py.typed, the spec, LICENSE and version {version()}")


def check_changelog() -> None:
    current = version()
    if ".dev" in current:
        say(f"version {current} is a development version: not a release (no CHANGELOG section needed)")
        return
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    if not re.search(rf"^## \[{re.escape(current)}\]", text, re.MULTILINE):
        raise ReleaseCheckFailed(f"CHANGELOG.md has no '## [{current}]' section for this release")


def fresh_venv(where: Path) -> tuple[Path, Path]:
    """A new virtual environment (no system packages): its python and its scripts folder."""
    shutil.rmtree(where, ignore_errors=True)
    run([sys.executable, "-m", "venv", where])
    scripts = where / ("Scripts" if os.name == "nt" else "bin")
    return scripts / "python", scripts


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH (the checkout must not leak in; the commands also run outside it) and no ODAPI_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAPI_") and k != "PYTHONPATH"}
    return {**env, "PYTHONPATH": "", "COLUMNS": "120"}


def smoke(wheel: Path, work: Path, *, demo_patients: int = 300) -> None:
    """Install the wheel into a fresh venv, without then with the ``cli`` extra, and use it as a user would."""
    python, scripts = fresh_venv(work / "venv")
    env = _clean_env()
    here = functools.partial(run, env=env, cwd=work)
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    here([*pip, wheel])
    out = here(
        [
            python,
            "-c",
            "import odapi_async, odapi_async.sync, odapi_async.events; print(odapi_async.__file__)",
        ]
    )
    if str(work) not in out:
        raise ReleaseCheckFailed(f"odapi_async was imported from outside the fresh venv: {out.strip()}")
    bare = here([scripts / "odapi", "--help"], expect=2).strip()
    if len(bare.splitlines()) != 1 or "pip install 'odapi-async[cli]'" not in bare:
        raise ReleaseCheckFailed(
            f"odapi without the cli extra should print one line naming it; printed:\n{bare}"
        )
    say(f"ok: without extras, odapi says: {bare}")
    emulator = here([python, "-m", "odapi_async.emulator"], expect=2).strip()
    if len(emulator.splitlines()) != 1 or "pip install 'odapi-async[emulator]'" not in emulator:
        raise ReleaseCheckFailed(
            f"the emulator without its extra should print one line; printed:\n{emulator}"
        )
    here([*pip, f"{wheel}[cli]"])
    if "sync" not in here([scripts / "odapi", "--help"]):
        raise ReleaseCheckFailed("odapi --help does not list the sync command")
    db = work / "demo.sqlite"
    out = here([scripts / "odapi", "demo", "--db", db, "--patients", str(demo_patients)])
    if not db.exists() or "Throttle violations counted by the emulator: 0" not in out:
        raise ReleaseCheckFailed(f"odapi demo did not finish as expected:\n{out[-4000:]}")
    say(f"ok: odapi demo from the installed wheel synced into {db.name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/release.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="Where the sdist and wheel go.")
    parser.add_argument("--work", type=Path, help="Scratch folder for the fresh venv (default: a temp dir).")
    parser.add_argument("--skip-build", action="store_true", help="Check the files already in --dist.")
    parser.add_argument("--demo-patients", type=int, default=300)
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        check_changelog()
        if args.skip_build:
            sdist, wheel = next(args.dist.glob("*.tar.gz")), next(args.dist.glob("*.whl"))
        else:
            sdist, wheel = build(args.dist.resolve())
        run([sys.executable, "-m", "twine", "check", "--strict", sdist, wheel])
        check_wheel(wheel)
        with tempfile.TemporaryDirectory(prefix="odapi-release-") as scratch:
            smoke(wheel, (args.work or Path(scratch)).resolve(), demo_patients=args.demo_patients)
    except (ReleaseCheckFailed, subprocess.TimeoutExpired, StopIteration) as exc:
        print(f"release: FAILED: {exc or 'no sdist or wheel in ' + str(args.dist)}", file=sys.stderr)
        return 1
    say(f"{sdist.name} and {wheel.name} are ready ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
