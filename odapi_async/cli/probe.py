"""``odapi probe``: which modes of the cascade answer, and which one requests would use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import click
from rich.console import Console
from rich.table import Table

from .. import OpenDental
from ._common import CliFailure, Connection, connection_options


async def _probe(connection: Connection) -> tuple[Any, str]:
    async with connection.session() as od:
        report = await od.probe()  # type: ignore[attr-defined]
        return report, str(od.mode)


def _rows(report: Any) -> list[tuple[str, str]]:
    if isinstance(report, Mapping):
        return [(str(mode), str(item)) for mode, item in report.items()]
    return [(str(getattr(item, "mode", "")), str(item)) for item in report]


@click.command()
@connection_options
def probe(connection: Connection) -> int:
    """Try each mode of the cascade (Local, Service, Remote) and print what answered."""
    if not hasattr(OpenDental, "probe"):
        raise CliFailure(
            "odapi probe is not available in this version of odapi_async (no OpenDental.probe())", 2
        )
    report, mode = anyio.run(_probe, connection)
    table = Table("mode", "result", title="odapi probe")
    for name, result in _rows(report):
        table.add_row(name, result)
    console = Console()
    console.print(table)
    console.print(f"requests go to: {mode}")
    return 0
