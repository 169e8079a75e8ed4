"""The :class:`Emulator`: a synthetic practice served on three listeners (local, service, remote)."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Future
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from odapi_async._spec import load_spec
from odapi_async.emulator._practice.db import Practice
from odapi_async.emulator._server.app import LISTENERS, EmulatorState, build_app
from odapi_async.emulator._server.events import EventFirer
from odapi_async.emulator._server.faults import Faults
from odapi_async.emulator._server.http import is_loopback
from odapi_async.emulator._server.listeners import Listener
from odapi_async.emulator._server.stats import DEFAULT_HISTORY, key_id

T = TypeVar("T")

DEFAULT_CUSTOMER_KEYS: dict[str, str] = {"cust-full": "full", "cust-ro": "read_all"}


def permission_groups() -> frozenset[str]:
    """The API permission groups the spec names (the docs' permissions table)."""
    groups = {op.get("permission") for res in load_spec()["resources"] for op in res["operations"]}
    return frozenset(g for g in groups if g)


TIERS = ("read_all", "full", "enterprise")


class Emulator:
    """A local Open Dental API server for tests, demos and benchmarks.

    Use ``async with Emulator(...) as emu`` in a running event loop, or ``with Emulator(...).in_thread() as
    emu`` to serve from a background thread with its own loop (so a client under test does not share the
    server's CPU loop). ``emu.endpoints`` gives the base URL of each listener.
    """

    def __init__(
        self,
        seed: int = 1,
        patients: int = 200,
        developer_key: str = "dev",
        customer_keys: Mapping[str, str] | None = None,
        intervals: Mapping[str, float] | None = None,
        ports: Mapping[str, int] | None = None,
        db_path: str | None = None,
        faults: Mapping[str, Faults | Mapping[str, float]] | None = None,
        host: str = "127.0.0.1",
        *,
        history: int = DEFAULT_HISTORY,
        now: datetime | None = None,
        db: sqlite3.Connection | None = None,
        fractional_retry_after: bool = False,
        admin_token: str | None = None,
        permissions: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        keys = dict(DEFAULT_CUSTOMER_KEYS if customer_keys is None else customer_keys)
        # API permission groups per customer key ("Read All", "Comm", "Appointments"…, as in the docs'
        # permissions table); a key not listed has every group. An operation outside them answers 401.
        self.permissions: dict[str, frozenset[str]] = {
            key: frozenset(groups) for key, groups in (permissions or {}).items()
        }
        for key, groups in self.permissions.items():
            if key not in keys:
                raise ValueError(f"permissions given for an unknown customer key ({len(key)} characters)")
            unknown_groups = groups - permission_groups()
            if unknown_groups:
                raise ValueError(
                    f"unknown permission group(s) {sorted(unknown_groups)}; groups: {sorted(permission_groups())}"
                )
        for tier in keys.values():
            if tier not in TIERS:
                raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
        unknown = set(ports or {}) - set(LISTENERS)
        if unknown:
            raise ValueError(f"unknown listener(s): {', '.join(sorted(unknown))}")
        self.seed = seed
        self.patients = patients
        self.developer_key = developer_key
        self.customer_keys = keys
        self.intervals: dict[str, float] = dict(intervals or {})
        self.ports: dict[str, int] = {name: int((ports or {}).get(name, 0)) for name in LISTENERS}
        self.db_path = db_path
        self.host = host
        self.history = history
        self.now = now
        self.fractional_retry_after = fractional_retry_after
        # Bound beyond loopback, anyone on the network could reset stats or stop listeners: require a token.
        if admin_token is None and not is_loopback(host):
            admin_token = secrets.token_urlsafe(18)
        self.admin_token = admin_token
        self._faults = {
            name: f if isinstance(f, Faults) else Faults(**{k: float(v) for k, v in f.items()})
            for name, f in (faults or {}).items()
        }
        for name in self._faults:
            if name not in LISTENERS:
                raise ValueError(f"unknown listener {name!r} in faults")
        self._db = db
        self._state: EmulatorState | None = None
        self._listeners: dict[str, Listener] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_stop: asyncio.Event | None = None  # set to end in_thread()'s serving
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never show keys (nor the admin token)
        return f"<Emulator seed={self.seed} patients={self.patients} keys={len(self.customer_keys)}>"

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Build the practice (in a worker thread) and start the three listeners."""
        if self._state is not None:
            raise RuntimeError("emulator already started")
        self._loop = asyncio.get_running_loop()
        if self._db is None:
            from odapi_async.emulator._practice.seed import create_store

            self._db = await asyncio.to_thread(
                create_store, self.db_path, seed=self.seed, patients=self.patients, now=self.now
            )
        practice = Practice(self._db)
        state = EmulatorState.create(
            practice,
            developer_key=self.developer_key,
            customer_keys=self.customer_keys,
            intervals=self.intervals,
            faults=self._faults,
            seed=self.seed,
            history=self.history,
            fractional_retry_after=self.fractional_retry_after,
            admin_token=self.admin_token,
        )
        state.set_listener_up = self._set_up
        state.permissions = dict(self.permissions)
        self._state = state
        try:
            for name in LISTENERS:
                listener = Listener(name, build_app(state, name), self.host, self.ports[name])
                self._listeners[name] = listener
                await listener.start()
                self.ports[name] = listener.port
            await state.events.start()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop every listener (the database stays open for inspection until garbage collected)."""
        if self._state is not None:
            await self._state.events.aclose()
        listeners, self._listeners = self._listeners, {}
        await asyncio.gather(*(lst.aclose() for lst in listeners.values()), return_exceptions=True)

    # -- background thread ----------------------------------------------------------------------------------
    def in_thread(self) -> Emulator:
        """Start serving from a background thread with its own event loop; returns self (a context manager)."""
        if self._thread is not None:
            raise RuntimeError("emulator already running in a thread")
        loop = asyncio.new_event_loop()
        ready: Future[None] = Future()

        def run() -> None:
            asyncio.set_event_loop(loop)

            async def main() -> None:
                try:
                    await self.start()
                except BaseException as exc:
                    ready.set_exception(exc)
                    return
                # An event, not loop.stop(): a stop() that lands while run_until_complete is ending is lost,
                # and a quick start-and-stop then served forever.
                self._thread_stop = asyncio.Event()
                ready.set_result(None)
                await self._thread_stop.wait()

            loop.run_until_complete(main())
            loop.run_until_complete(self.aclose())
            loop.close()

        self._thread = threading.Thread(target=run, name="odapi-emulator", daemon=True)
        self._thread.start()
        ready.result()
        return self

    start_in_thread = in_thread

    def stop_thread(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None or self._loop is None:
            return
        if self._thread_stop is not None:
            self._loop.call_soon_threadsafe(self._thread_stop.set)
        thread.join()

    def __enter__(self) -> Emulator:
        if self._thread is None:
            self.in_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the emulator's loop thread (directly when already there)."""
        if self._thread is None or threading.current_thread() is self._thread or self._loop is None:
            return fn()
        out: Future[T] = Future()

        def run() -> None:
            try:
                out.set_result(fn())
            except BaseException as exc:
                out.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return out.result()

    async def _acall(self, make: Callable[[], Awaitable[None]]) -> None:
        if self._thread is None or threading.current_thread() is self._thread or self._loop is None:
            await make()
            return

        async def wrapper() -> None:
            await make()

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(wrapper(), self._loop))

    # -- public surface -------------------------------------------------------------------------------------
    @property
    def state(self) -> EmulatorState:
        """What the three listeners share: the practice, keys, throttle, faults, stats, handlers, events."""
        if self._state is None:
            raise RuntimeError("emulator not started")
        return self._state

    #: The former name of :attr:`state` (tests and tools written against it keep working).
    core = state

    @property
    def events(self) -> EventFirer:
        """The API Events firer: its settings, deliveries, ``poll_now()`` and ``fire_ui()``."""
        return self.state.events

    @property
    def db(self) -> sqlite3.Connection:
        """The SQLite connection holding the practice (for tests; mind the loop thread in thread mode)."""
        return self.state.practice.db

    @property
    def endpoints(self) -> dict[str, str]:
        """Base URL per listener, e.g. ``{"local": "http://127.0.0.1:PORT/api/v1", ...}``."""
        return {name: f"http://{self._url_host()}:{self.ports[name]}/api/v1" for name in LISTENERS}

    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @staticmethod
    def key_id(customer_key: str) -> str:
        """The id under which ``stats()`` lists a customer key."""
        return key_id(customer_key)

    def stats(self) -> dict[str, Any]:
        """Plain-data snapshot of the counters; see docs/emulator.md for the shape."""

        def snap() -> dict[str, Any]:
            out = self.state.stats.snapshot()
            out["faults"] = {name: inj.faults.as_dict() for name, inj in self.state.injectors.items()}
            out["up"] = {name: lst.up for name, lst in self._listeners.items()}
            return out

        return self._call(snap)

    def reset_stats(self) -> None:
        self._call(self.state.stats.reset)

    def set_faults(self, listener: str, **settings: float) -> Faults:
        """Change fault settings of one listener live (``latency``, ``jitter``, ``rate_504``, ...)."""
        if listener not in LISTENERS:
            raise ValueError(f"unknown listener {listener!r}")
        return self._call(lambda: self.state.injectors[listener].update(**settings))

    def clear_faults(self, listener: str | None = None) -> None:
        names = [listener] if listener else list(LISTENERS)
        for name in names:
            self.set_faults(name, **Faults().as_dict())

    def stop_listener(self, name: str) -> None:
        """Take a listener down now: connections to its port are refused until ``start_listener``."""
        self._call(lambda: self._listener(name).stop())

    async def start_listener(self, name: str) -> None:
        """Bring a listener back on the same port."""
        listener = self._listener(name)
        await self._acall(listener.start)

    async def _set_up(self, name: str, up: bool) -> None:
        if up:
            await self._listener(name).start()
        else:
            self._listener(name).stop()

    def _listener(self, name: str) -> Listener:
        try:
            return self._listeners[name]
        except KeyError:
            raise ValueError(f"unknown listener {name!r}") from None
