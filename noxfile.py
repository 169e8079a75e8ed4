"""One check at a time for a developer: ``nox -s tests``, ``lint``, ``typecheck``, ``docs``, ``generate``, ``bench``,
``release``.

CI runs ``.ci/run`` (``nox -s ci`` runs it here): the same commands in one go, in the project's ``.venv``, with the
test suite run once under coverage (``nox -s coverage`` is that run alone). Change a check in both places.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = ["3.11"]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite, the README's command (unit tests with mocked transports, integration tests on the emulator)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def coverage(session: nox.Session) -> None:
    """The suite under coverage, as CI runs it; fails below [tool.coverage.report] fail_under."""
    session.install("-e", ".[test]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", "-p", "no:cacheprovider", *session.posargs)
    session.run("coverage", "combine", "-q")
    session.run("coverage", "report", "--skip-covered", "--skip-empty")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint and format check; the import contracts (import-linter needs the package installed)."""
    session.install("-e", ".", "ruff>=0.6", "import-linter>=2.1")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, mypy on the tests, pyright --verifytypes on the public API."""
    session.install("-e", ".[test]", "mypy>=1.11", "pyright>=1.1.400")
    session.run("mypy", "--strict", "odapi_async")
    session.run("bash", "scripts/typecheck_tests.sh", external=True)
    session.run("pyright", "--verifytypes", "odapi_async", "--ignoreexternal")


@nox.session(python=False)
def ci(session: nox.Session) -> None:
    """What CI runs: .ci/run, every check in one go (into .venv; it installs redis-server and Node.js if missing)."""
    session.run("bash", ".ci/run", external=True)


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
        "sync_scale": [[]],
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
