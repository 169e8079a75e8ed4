"""``odapi probe``: which modes of the cascade answer, and which one requests would use."""

from __future__ import annotations

import anyio
import click
from rich.console import Console
from rich.table import Table

from odapi_async._request.routing import ModeReport
from odapi_async._settings import Mode
from odapi_async.cli._common import Connection, connection_options


async def _probe(connection: Connection) -> tuple[dict[Mode, ModeReport], str]:
    async with connection.session() as od:
        return await od.probe(), str(od.mode)


def _answers(report: ModeReport) -> str:
    if report.reachable is None:
        return "not probed (assumed up)"
    return "yes" if report.reachable else "no"


def _rows(reports: dict[Mode, ModeReport]) -> list[list[str]]:
    """One row per mode."""
    return [
        [
            report.mode,
            report.url,
            _answers(report),
            f"{report.round_trip * 1000:.1f} ms" if report.round_trip is not None else "",
            str(report.page_cap),
            "yes" if report.throttled else "no",
            "←" if report.in_use else "",
            report.error or "",
        ]
        for report in reports.values()
    ]


@click.command()
@connection_options
def probe(connection: Connection) -> int:
    """Try each mode of the cascade (Local, Service, Remote) and print what answered."""
    report, mode = anyio.run(_probe, connection)
    table = Table(
        "mode",
        "URL",
        "answers",
        "round trip",
        "page cap",
        "throttled",
        "in use",
        "error",
        title="odapi probe",
    )
    for row in _rows(report):
        table.add_row(*row, end_section=False)
    console = Console()
    console.print(table)
    console.print(f"requests go to: {mode}")
    return 0
