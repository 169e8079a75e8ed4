"""How counters look in a notebook: ``od.throttle_stats()`` stays a dict and renders as a table.

Jupyter calls ``_repr_html_``; rich (the terminal, ``rich.print``) calls ``__rich__``. Nothing here holds a key
or patient data: the counters are numbers per mode.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from odapi_async._settings import ThrottleStats

__all__ = ["StatsTable"]

_COLUMNS = (
    ("requests", "requests", "{:,}"),
    ("waits", "waits", "{:,}"),
    ("wait_time", "wait s", "{:.2f}"),
    ("throttle_answers", "throttle answers", "{:,}"),
    ("in_flight", "in flight", "{:,}"),
    ("queued", "queued", "{:,}"),
    ("interval", "interval s", "{:.2f}"),
    ("tier", "tier", "{}"),
    ("margin", "margin s", "{:.3f}"),
    ("max_start_lag", "max start lag s", "{:.3f}"),
)


class StatsTable(dict[str, ThrottleStats]):
    """Throttle counters by mode: a plain ``dict`` that draws itself as a table in notebooks and rich."""

    def _cells(self) -> list[tuple[str, list[str]]]:
        return [
            (mode, [fmt.format(getattr(stats, name)) for name, _, fmt in _COLUMNS])
            for mode, stats in self.items()
        ]

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in _COLUMNS)
        body = "".join(
            f"<tr><th>{html.escape(mode)}</th>"
            + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
            + "</tr>"
            for mode, cells in self._cells()
        )
        if not body:
            body = f'<tr><td colspan="{len(_COLUMNS) + 1}">no requests yet</td></tr>'
        return f"<table><thead><tr><th>mode</th>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(title="throttle stats")
        table.add_column("mode")
        for _, title, _ in _COLUMNS:
            table.add_column(title, justify="right")
        for mode, cells in self._cells():
            table.add_row(mode, *cells)
        return table

    def as_dicts(self) -> dict[str, dict[str, Any]]:
        """Plain nested dicts (for JSON or a DataFrame)."""
        return {mode: dataclasses.asdict(stats) for mode, stats in self.items()}
