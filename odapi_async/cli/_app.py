"""The ``odapi`` command group and its error handling (imported once the ``cli`` extra is known to be there)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click

from odapi_async import ConfigurationError, InvalidParameter, MissingExtra, OpenDentalError
from odapi_async.cli._common import CliFailure

_DEBUG = "--debug"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(_DEBUG, is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="odapi-async", prog_name="odapi")
def cli(debug: bool) -> None:
    """odapi: sync Open Dental offices into SQLite, read the API, run the emulator."""


def _register() -> None:
    from odapi_async.cli.demo import demo
    from odapi_async.cli.emulator import emulator
    from odapi_async.cli.get import get
    from odapi_async.cli.probe import probe
    from odapi_async.cli.sync import sync

    for command in (demo, emulator, get, probe, sync):
        cli.add_command(command)


_register()


def _log_to_stderr(debug: bool) -> None:
    """The SDK's log lines (a mode failing over, a tier learned) on stderr, apart from the tables on stdout."""
    from rich.console import Console
    from rich.logging import RichHandler

    from odapi_async._util.logenv import level_from_env

    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=debug, markup=False)
    logger = logging.getLogger("odapi_async")
    logger.handlers[:] = [handler]
    # --debug, else ODAPI_LOG (debug, info or warning), else warnings only
    logger.setLevel(logging.DEBUG if debug else level_from_env() or logging.WARNING)
    logger.propagate = False


def run(argv: Sequence[str] | None = None) -> int:
    """Run ``odapi`` with ``argv`` (default: the process's arguments); returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _DEBUG in args[: args.index("--") if "--" in args else len(args)]
    _log_to_stderr(debug)
    try:
        result = cli.main(args, prog_name="odapi", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code  # 2 for usage errors
    except click.Abort:
        click.echo("interrupted", err=True)
        return 130
    except MissingExtra as exc:  # a feature of this command whose extra is not installed (--redis: redis)
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return 2
    except CliFailure as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except (ConfigurationError, InvalidParameter) as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return 2
    except OpenDentalError as exc:
        if debug:
            raise
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:
        if debug:
            raise
        click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        return 1
    return int(result or 0)
