"""The offices of a dlt run: where they come from, and one session per office shared by its resources.

dlt drives each async resource one step at a time, each step (``__anext__``) in a task of its own on dlt's
event loop. A session or a paginator entered in one step and left in another would cross tasks, which anyio's
cancel scopes forbid. So each office's session lives in a task of its own (:class:`OfficeHost`), opened when the
first resource needs it and closed when the last one is done; the listings run in tasks of their own too
(``_source.py``), and the resources only pass on what those tasks produce.

One session per office means one throttle per customer key (shared by every resource of the office, and by any
other session of the process on that key) and one cascade (Local → Service → Remote) found once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Union

from odapi_async import OpenDental
from odapi_async.sync import OfficeConfig, OfficeEntry, load_offices
from odapi_async.sync._offices import OfficesFile

#: What ``opendental_source(offices=...)`` takes.
Offices = Union[str, os.PathLike[str], OfficesFile, Sequence[Union[OfficeConfig, OfficeEntry]]]


def office_configs(offices: Offices, developer_key: str | None = None) -> list[OfficeConfig]:
    """The offices to load: an offices file (its path, or loaded), or a list of offices; names must be distinct.

    An :class:`OfficeEntry` (an offices file's office) gets its session from its fields; ``developer_key`` is
    the file's, else this argument, else ``ODAPI_DEVELOPER_KEY``.
    """
    if isinstance(offices, (str, os.PathLike)):
        offices = load_offices(Path(offices))
    if isinstance(offices, OfficesFile):
        developer_key = offices.developer_key or developer_key
        items: Iterable[OfficeConfig | OfficeEntry] = offices.offices
    else:
        items = offices
    out = []
    for item in items:
        if isinstance(item, OfficeEntry):
            out.append(_from_entry(item, developer_key))
        elif isinstance(item, OfficeConfig):
            out.append(item)
        else:
            raise TypeError(f"offices: expected OfficeConfig or OfficeEntry items; got {type(item).__name__}")
    if not out:
        raise ValueError("offices: no offices to load")
    names = [o.name for o in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(
            f"offices: each office needs its own name (the office column); repeated: {', '.join(twice)}"
        )
    return out


def _from_entry(entry: OfficeEntry, developer_key: str | None) -> OfficeConfig:
    def session() -> OpenDental:
        return OpenDental(
            developer_key,
            entry.customer_key,
            modes=entry.modes,  # type: ignore[arg-type]
            endpoints=entry.endpoints or None,
            service_host=entry.service_host,
            tier=entry.tier,  # type: ignore[arg-type]
            intervals=entry.intervals or None,
        )

    return OfficeConfig(entry.name, session, customer_key=entry.customer_key)


class OfficeHost:
    """One office's session on dlt's event loop, held open while any resource uses it, and its clock."""

    def __init__(self, office: OfficeConfig) -> None:
        self.office = office
        self._users = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._session: OpenDental | None = None
        self._error: BaseException | None = None
        self._clock_lock = asyncio.Lock()
        self._clock: dt.datetime | None = None
        self.latest: dt.datetime | None = None
        """The latest ``serverDateTime`` any listing of this office has seen."""

    async def acquire(self) -> OpenDental:
        """The office's session (opened on first use); the error that prevented it, raised again."""
        self._users += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._serve(), name=f"odapi office {self.office.name}"
            )
        await self._ready.wait()
        if self._error is not None:
            raise self._error
        assert self._session is not None
        return self._session

    def release(self) -> None:
        self._users -= 1
        if self._users == 0:
            self._closing.set()

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _serve(self) -> None:
        try:
            async with self.office.session() as od:
                self._session = od
                self._ready.set()
                await self._closing.wait()
        except Exception as exc:  # reported by each resource that wanted the session
            self._error = exc
        finally:
            self._session = None
            self._ready.set()

    def note(self, rows: Sequence[Any]) -> dt.datetime | None:
        """A page's ``serverDateTime`` (None if its rows carry none), kept as the office's latest "now"."""
        served = getattr(rows[0], "serverDateTime", None) if rows else None
        if not isinstance(served, dt.datetime):
            return None
        if self.latest is None or served > self.latest:
            self.latest = served
        return served

    async def clock(self, od: OpenDental) -> dt.datetime | None:
        """The office's clock, read before a listing begins: once per run (one small request, shared by every
        resource that needs it), or later pages' ``serverDateTime`` if one has been seen since.

        Any moment before the listing begins is a safe watermark: a row changed after it is fetched again next
        time. One read per run, rather than "only if no page has answered yet", keeps a run's requests the same
        whatever order dlt runs the resources in.
        """
        async with self._clock_lock:
            if self._clock is None:
                self.note(await od.providers.list(Limit=1).first_page())
                self._clock = self.latest
        if self._clock is None:
            return None
        return max(self._clock, self.latest or self._clock)


class OfficeHosts:
    """The :class:`OfficeHost` of each office for one event loop (dlt makes a new loop for each extraction)."""

    def __init__(self, offices: Sequence[OfficeConfig]) -> None:
        self._offices = {o.name: o for o in offices}
        # Weak: the loop is dlt's, and its hosts go with it.
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, OfficeHost]] = (
            weakref.WeakKeyDictionary()
        )

    def host(self, name: str) -> OfficeHost:
        hosts = self._by_loop.setdefault(asyncio.get_running_loop(), {})
        current = hosts.get(name)
        if current is None or current._closing.is_set():
            current = hosts[name] = OfficeHost(self._offices[name])
        return current
