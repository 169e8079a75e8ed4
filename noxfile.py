"""The one entry point for humans and CI: ``nox -s tests``, ``lint``, ``typecheck``, ``docs``, ``generate``, ``bench``,
``release``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = ["3.11"]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (unit tests with mocked transports, integration tests against the emulator)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[emulator,cli,redis]", "mypy>=1.11")
    session.run("mypy", "--strict", "odapi_async")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site (strict: a broken link fails)."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON)
def generate(session: nox.Session) -> None:
    """Regenerate odapi_async/resources/_generated and docs/reference from spec/opendental-api.json."""
    session.run("python", "scripts/generate.py", external=True)
    session.run("python", "scripts/generate_reference.py", external=True)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run the benchmarks in benchmarks/ (each prints a JSON line and a one-line summary)."""
    session.install("-e", ".[bench]")
    runs = {
        "decode": [[]],
        "emulator": [[]],
        "events": [[]],
        "sync": [[]],
        "throttle": [
            ["all"],
            ["p1", "--via-session"],
            ["p2", "--via-session", "--stagger", "--gc-threshold", "50000"],
        ],
        "sync_worker": [[]],
        "frames": [[]],
        "blocking": [[]],
        "redis": [["--duration", "30"]],
        "paging": [[]],
        "paging_paired": [[]],
    }
    for name in session.posargs or list(runs):
        for args in runs[name]:
            session.run("python", f"benchmarks/bench_{name}.py", *args)


@nox.session(python=PYTHON)
def release(session: nox.Session) -> None:
    """Build the sdist and wheel into dist/, twine-check them, install the wheel into a fresh venv and run
    ``odapi demo`` from it (scripts/release.py; publishing stays a separate, deliberate ``twine upload``)."""
    session.install("build>=1.2", "twine>=5")
    session.run("python", "scripts/release.py", *session.posargs)
