"""Open appointment times: provider schedules minus what already occupies them (Slots and SlotsWebSched).

The search works in whole minutes of one day (0 .. 1440), over the schedule rows of the asked dates: its cost
is bounded by the rows the practice holds, whatever the parameters say (a far date range, a huge or negative
length cannot make it loop or overflow).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from odapi_async.emulator._practice.db import ApiError

#: Appointment statuses that occupy an operatory and its provider.
BOOKED_STATUSES = ("Scheduled", "Complete", "ASAP")
#: Days searched when no date is given (the docs: "Default is the next 14 days").
DEFAULT_DAYS = 14
#: The length of the pieces SlotsWebSched offers (its documented example: half-hour times).
WEB_SCHED_MINUTES = 30
DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class Slot:
    day: str  # yyyy-MM-dd
    start: int  # minutes after midnight
    end: int
    prov: int
    op: int

    def as_wire(self) -> dict[str, object]:
        return {
            "DateTimeStart": f"{self.day} {_clock(self.start)}",
            "DateTimeEnd": f"{self.day} {_clock(self.end)}",
            "ProvNum": self.prov,
            "OpNum": self.op,
        }


def _clock(minutes: int) -> str:
    if minutes >= DAY_MINUTES:  # a schedule ending at midnight ends at the last second of its day
        return "23:59:59"
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def _minutes(text: str) -> int:
    """'HH:mm[:ss]' -> minutes after midnight, clipped to the day."""
    parts = (text or "0:0").split(":")
    try:
        value = int(parts[0]) * 60 + int(parts[1])
    except (ValueError, IndexError):
        return 0
    return min(max(value, 0), DAY_MINUTES)


def pattern_minutes(pattern: str | None) -> int:
    """An appointment's length: five minutes per character of its time pattern (at least five)."""
    return max(len(pattern or ""), 1) * 5


def date_window(date: str | None, start: str | None, end: str | None, today: str) -> tuple[str, str]:
    """The first and last day searched ('yyyy-MM-dd', already validated by the parameter check)."""
    if date:
        return date, date
    if start or end:
        first = start or today
        last = end or first
        if last < first:
            raise ApiError(400, "dateEnd must not be before dateStart.")
        return first, last
    last_day = datetime.strptime(today, "%Y-%m-%d") + timedelta(days=DEFAULT_DAYS - 1)
    return today, last_day.strftime("%Y-%m-%d")


def subtract(free: list[tuple[int, int]], busy: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """``free`` minus every interval of ``busy`` (half-open minute intervals)."""
    for b0, b1 in sorted(busy):
        out: list[tuple[int, int]] = []
        for f0, f1 in free:
            if b1 <= f0 or f1 <= b0:
                out.append((f0, f1))
                continue
            if f0 < b0:
                out.append((f0, b0))
            if b1 < f1:
                out.append((b1, f1))
        free = out
    return free


def open_slots(
    db: sqlite3.Connection,
    first: str,
    last: str,
    *,
    prov: int | None,
    op: int | None,
    min_length: int,
) -> list[Slot]:
    """Entire open stretches of provider schedules between ``first`` and ``last`` (inclusive).

    An operatory's time is taken by any appointment in it, by its blockouts, and by any appointment of the
    schedule's provider in another operatory (the docs: a provider's appointments in several operatories count
    as a whole). Stretches shorter than ``min_length`` minutes are left out.
    """
    schedules = db.execute(
        'SELECT "ScheduleNum", "SchedDate", "StartTime", "StopTime", "ProvNum" FROM "schedules" '
        'WHERE "SchedType" = \'Provider\' AND "SchedDate" BETWEEN ? AND ? ORDER BY "SchedDate", "StartTime"',
        (first, last),
    ).fetchall()
    if not schedules:
        return []
    sched_ops: dict[int, list[int]] = {}
    blockouts: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for sched_num, op_num in db.execute('SELECT "ScheduleNum", "OperatoryNum" FROM "scheduleops"'):
        sched_ops.setdefault(int(sched_num), []).append(int(op_num))
    for sched_num, day, start, stop in db.execute(
        'SELECT "ScheduleNum", "SchedDate", "StartTime", "StopTime" FROM "schedules" '
        'WHERE "SchedType" = \'Blockout\' AND "SchedDate" BETWEEN ? AND ?',
        (first, last),
    ):
        for op_num in sched_ops.get(int(sched_num), ()):
            blockouts.setdefault((day, op_num), []).append((_minutes(start), _minutes(stop)))
    by_op: dict[tuple[str, int], list[tuple[int, int]]] = {}
    by_prov: dict[tuple[str, int], list[tuple[int, int]]] = {}
    marks = ", ".join("?" for _ in BOOKED_STATUSES)
    for when, op_num, prov_num, hyg_num, pattern in db.execute(
        'SELECT "AptDateTime", "Op", "ProvNum", "ProvHyg", "Pattern" FROM "appointments" '
        f'WHERE substr("AptDateTime", 1, 10) BETWEEN ? AND ? AND "AptStatus" IN ({marks})',
        (first, last, *BOOKED_STATUSES),
    ):
        day, start = str(when)[:10], _minutes(str(when)[11:16])
        span = (start, min(start + pattern_minutes(pattern), DAY_MINUTES))
        by_op.setdefault((day, int(op_num or 0)), []).append(span)
        for who in {int(prov_num or 0), int(hyg_num or 0)} - {0}:
            by_prov.setdefault((day, who), []).append(span)
    out: list[Slot] = []
    for sched_num, day, start, stop, prov_text in schedules:
        prov_num = int(prov_text or 0)
        if prov is not None and prov_num != prov:
            continue
        for op_num in sched_ops.get(int(sched_num), ()):
            if op is not None and op_num != op:
                continue
            busy: Sequence[tuple[int, int]] = [
                *by_op.get((day, op_num), ()),
                *by_prov.get((day, prov_num), ()),
                *blockouts.get((day, op_num), ()),
            ]
            for s0, s1 in subtract([(_minutes(start), _minutes(stop))], busy):
                if s1 - s0 >= max(min_length, 1):
                    out.append(Slot(day, s0, s1, prov_num, op_num))
    out.sort(key=lambda s: (s.day, s.start, s.op))
    return out


def pieces(slots: Iterable[Slot], minutes: int) -> list[Slot]:
    """Cut open stretches into back-to-back times of ``minutes`` (what WebSched offers a patient)."""
    out: list[Slot] = []
    for s in slots:
        t = s.start
        while t + minutes <= s.end:  # bounded: at most one day's minutes / ``minutes`` steps
            out.append(Slot(s.day, t, t + minutes, s.prov, s.op))
            t += minutes
    out.sort(key=lambda s: (s.day, s.start, s.op))
    return out
