"""``odapi get --format table``: the columns that have something to show, laid out to be read.

A resource's rows have up to a hundred fields, most of them empty or of interest to few. The table shows the
primary key first, then, in the model's order, the fields that hold a value in at least one of the rows
printed, except those that identify a person (``MASKED_FIELDS``: the SSN, the birthdate, ...), which it shows
only when ``--fields`` names them. On a terminal it keeps to the terminal's width: whole columns are left out rather than every column
cut to a letter, and a value longer than :data:`MAX_CELL` characters is cut with ``…``. Piped, the layout is
plain aligned text with every such column and whole values (no box characters, nothing cut). What was left
out is said on stderr, with the flags that show it (``--fields``, ``--format csv``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from odapi_async._codec import MASKED_FIELDS

#: On a terminal, the longest value a cell shows whole.
MAX_CELL = 30
GAP = "  "


@dataclass
class Layout:
    columns: list[str]
    empty: list[str] = field(default_factory=list)  # no value in any row
    identifying: list[str] = field(default_factory=list)  # MASKED_FIELDS (the SSN, ...): shown only if named
    no_room: list[str] = field(default_factory=list)  # past the terminal's width

    def note(self) -> str | None:
        """What the table leaves out and how to see it, or None when nothing is."""
        parts = []
        if self.identifying:
            parts.append(f"{', '.join(self.identifying)} (identify a person: name them in --fields to show)")
        if self.empty:
            parts.append(f"{len(self.empty)} empty column(s)")
        if self.no_room:
            names = ", ".join(self.no_room[:6]) + (", ..." if len(self.no_room) > 6 else "")
            parts.append(f"{len(self.no_room)} past the terminal's width ({names})")
        if not parts:
            return None
        return f"not shown: {'; '.join(parts)}. --fields A,B,... to choose, --format csv for all"


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return " ".join(str(value).split()) if isinstance(value, str) else str(value)


def _cut(value: str) -> str:
    return value if len(value) <= MAX_CELL else value[: MAX_CELL - 1] + "…"


def choose(
    records: Sequence[dict[str, Any]], *, first: str | None, width: int | None, wanted: Sequence[str] = ()
) -> Layout:
    """The columns to show: ``wanted`` as given; else the filled ones, the key first, within ``width``."""
    if wanted:
        return Layout(list(wanted))
    names = list(records[0]) if records else []
    if first in names:
        names.remove(first)
        names.insert(0, first)
    filled = [n for n in names if any(text(r.get(n)) for r in records)]
    layout = Layout(
        [],
        empty=[n for n in names if n not in filled],
        identifying=[n for n in filled if n in MASKED_FIELDS],
    )
    filled = [n for n in filled if n not in MASKED_FIELDS]
    used = 0
    for name in filled:
        size = max(len(name), *(len(_cut(text(r.get(name)))) for r in records))
        needed = size if not layout.columns else len(GAP) + size
        if width is not None and layout.columns and used + needed > width:
            layout.no_room.append(name)
            continue
        layout.columns.append(name)
        used += needed
    return layout


def render(records: Sequence[dict[str, Any]], columns: Sequence[str], *, cut: bool) -> list[str]:
    """Aligned lines: the header, a rule, one line per row; numbers to the right."""
    cells = [[text(r.get(c)) for c in columns] for r in records]
    if cut:
        cells = [[_cut(v) for v in row] for row in cells]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in records)
        and bool(records)
        for c in columns
    ]

    def line(values: Sequence[str]) -> str:
        out = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return GAP.join(out).rstrip()

    return [line(columns), GAP.join("-" * w for w in widths), *(line(row) for row in cells)]
