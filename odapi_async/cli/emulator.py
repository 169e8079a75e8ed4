"""``odapi emulator``: serve the emulator (``odapi emulator --help`` lists its flags, argparse's own)."""

from __future__ import annotations

import click

from odapi_async._util.optional import MissingExtra
from odapi_async.cli._common import usage_error


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def emulator(args: tuple[str, ...]) -> int:
    """Run the API emulator until Ctrl-C (--help lists its flags)."""
    try:
        from odapi_async.emulator.__main__ import main as emulator_main
    except MissingExtra as exc:  # starlette/uvicorn missing
        raise usage_error(str(exc)) from None
    try:
        return emulator_main(list(args), prog="odapi emulator")
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
