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
        report = await od.probe()  # type: ignore[attr-defined,unused-ignore]  # before the prober: hasattr checked
        return report, str(od.mode)


def _answers(report: Any) -> str:
    reachable = getattr(report, "reachable", None)
    if reachable is None:
        return "not probed (assumed up)"
    return "yes" if reachable else "no"


def _rows(reports: Any) -> list[list[str]]:
    """One row per mode; reads the report's attributes by name (mode, url, reachable, round_trip, ...)."""
    items = reports.values() if isinstance(reports, Mapping) else reports
    rows = []
    for report in items:
        round_trip = getattr(report, "round_trip", None)
        rows.append(
            [
                str(getattr(report, "mode", "")),
                str(getattr(report, "url", "")),
                _answers(report),
                f"{round_trip * 1000:.1f} ms" if round_trip is not None else "",
                str(getattr(report, "page_cap", "")),
                "yes" if getattr(report, "throttled", False) else "no",
                "←" if getattr(report, "in_use", False) else "",
                str(getattr(report, "error", None) or ""),
            ]
        )
    return rows


@click.command()
@connection_options
def probe(connection: Connection) -> int:
    """Try each mode of the cascade (Local, Service, Remote) and print what answered."""
    if not hasattr(OpenDental, "probe"):
        raise CliFailure(
            "odapi probe is not available in this version of odapi_async (no OpenDental.probe())", 2
        )
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
