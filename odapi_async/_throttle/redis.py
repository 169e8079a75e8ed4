"""A throttle backend shared by many processes and hosts through Redis (extra ``redis``).

Each slot composes two turns: the process's own :class:`~odapi_async._throttle.key.KeyThrottle` first (so the tasks
of one process queue there, and one process asks Redis once per request, not once per waiting task), then a
lease from Redis. Redis decides with one atomic script per decision on its own clock (``redis_scripts.py``).
Acquiring is one round trip that carries two commands: the ``ACQUIRE`` script (join the line; free leases go to
its heads) and a ``BLPOP`` on this caller's own list, where the decision is pushed, at once or when a lease
frees: "start in W seconds", a start reserved for this caller, which sleeps W and sends. Releasing is the
second round trip (drop the lease, report the real departure, the round trip, a throttle answer; hand the lease
to the next in line). A wait longer than ``lease_ttl`` asks again once per TTL (an expired lease frees the key
only when some script sees it). Leases expire (``lease_ttl``), so a killed worker frees the key after the TTL;
a holder renews its lease past half the TTL.

Redis unreachable: ``fallback="fail"`` (default) raises :class:`~odapi_async.ThrottleUnavailable` before any
request is sent, in every request of the process that waits for its turn at that moment (they are told at once,
not each at its own turn; a ``PING`` every 0.25 s notices an outage while they wait); ``fallback="local"`` logs one WARNING and runs on the local throttle alone until Redis answers
again (tried every ``retry_down`` seconds). After a Redis restart the client reconnects and the scripts are
loaded again (``NOSCRIPT`` → ``EVAL``, once). See ``docs/scaling.md`` for what is and is not guaranteed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import statistics
import threading
import time
from collections import deque
from collections.abc import Awaitable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit

from odapi_async._exceptions import ThrottleUnavailable
from odapi_async._settings import KeySettings, Mode, Priority, ThrottleStats
from odapi_async._throttle.backend import ProcessThrottle
from odapi_async._throttle.key import MAX_CANCEL_HOLD, ThrottleSlot
from odapi_async._throttle.margin import MarginEstimator
from odapi_async._throttle.redis_scripts import ACQUIRE, LEAVE, PICKUP, RELEASE, RENEW, grant_key, state_keys
from odapi_async._util.optional import require_extra
from odapi_async._util.perloop import PerLoop
from odapi_async._util.redis_client import Script, blocking_pool, check_word, connect, run_script

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool

    from odapi_async._util.redis_client import Client

__all__ = ["RedisCounters", "RedisSlot", "RedisThrottle"]

logger = logging.getLogger("odapi_async.throttle")

_INF = float("inf")
#: How long the per-key state lives in Redis after its last use (the learned tier, the last start).
_KEEP_MS = 24 * 3600 * 1000
#: How long past the end of its BLPOP a waiter keeps its place in line: longer than a busy loop's lag.
_TICKET_GRACE = 1.0
#: The shortest BLPOP (s): Redis takes 0 as "forever".
_MIN_BLOCK = 0.01
#: How often Redis is asked whether it is there while requests wait for their local turn (fallback="fail").
_WATCH_EVERY = 0.25
_clock = time.monotonic


@dataclass
class RedisCounters:
    """What one (mode, key) cost in Redis, in this process."""

    requests: int = 0
    """Slots that held a Redis lease."""
    calls: int = 0
    """Round trips: acquires (each with its ``BLPOP``), releases, renewals, re-sends after ``NOSCRIPT``."""
    busy: int = 0
    """Times a waiting caller ran the script again: its ``BLPOP`` ended after ``lease_ttl``, or a lease expired
    while it waited."""
    noscript: int = 0
    """``NOSCRIPT`` answers (the script was loaded again)."""
    local_only: int = 0
    """Slots run on the local throttle alone while Redis was down (``fallback="local"``)."""
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    """Seconds per script round trip (an acquire's without its wait), the latest 10 000."""


class _KeyState:
    """This process's view of one (mode, key) on Redis."""

    __slots__ = ("counters", "keys", "learned", "margin", "settings")

    def __init__(self, keys: tuple[str, ...], settings: KeySettings) -> None:
        self.keys = keys
        self.settings = settings
        self.learned = False  # the shared tier "auto" was refused: read_all (as Redis last said)
        self.margin = MarginEstimator(settings.safety_margin)
        self.counters = RedisCounters()

    def round_trip(self) -> float:
        """A Redis round trip as it usually is: the median of the latest 32 script calls."""
        return statistics.median(itertools.islice(reversed(self.counters.latencies), 32))


class RedisSlot:
    """One attempt's turn: the local slot, then a Redis lease (see the module docstring)."""

    __slots__ = (
        "_key",
        "_lease_id",
        "_local",
        "_member",
        "_mode",
        "_owner",
        "_priority",
        "_renewer",
        "_retry",
        "_sent",
        "_start",
        "_state",
        "_throttled",
    )

    def __init__(
        self, owner: RedisThrottle, mode: Mode, key_id: str, priority: Priority, retry: bool
    ) -> None:
        self._owner = owner
        self._mode: Mode = mode
        self._key = key_id
        self._priority: Priority = priority
        self._retry = retry
        self._state = owner._state(mode, key_id)
        self._local: ThrottleSlot | None = None
        self._lease_id = ""
        self._member = ""  # the Redis lease, once granted ("" when running on the local throttle alone)
        self._start = 0.0  # the reserved start, on this process's clock
        self._sent: float | None = None
        self._throttled: tuple[float | None, float] | None = None
        self._renewer: asyncio.TimerHandle | asyncio.Task[None] | None = None

    @property
    def spaced(self) -> bool:
        return self._local is not None and self._local.spaced

    async def __aenter__(self) -> RedisSlot:
        local = self._owner.local.key(self._mode, self._key).slot(self._priority, retry=self._retry)
        await self._owner._local_turn(local)
        self._local = local
        try:
            await self._owner._acquire(self)
        except BaseException:
            local.give_back()  # the request never left: the local turn is not spent
            if self._member:  # cancelled while waiting for its reserved start
                self._owner._spawn(self._owner._release(self, ok=False, never_sent=True))
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._local is not None
        try:
            if self._member:
                await self._owner._release(self, ok=exc_type is None)
        finally:
            await self._local.__aexit__(exc_type, exc, tb)

    def mark_sent(self) -> None:
        if self._sent is None:
            self._sent = _clock()
            if self._local is not None:
                self._local.mark_sent()

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event.endswith("send_request_body.complete"):
            self.mark_sent()

    def report_throttled(self, retry_after: float | None, *, max_wait: float = _INF) -> None:
        """Hold this process's key now; Redis learns it with the release (which follows at once)."""
        if self._local is not None:
            self._local.report_throttled(retry_after, max_wait=max_wait)
        self._throttled = (retry_after, max_wait)


class _LoopClient:
    """The Redis client of one event loop, and its blocking pools (for waiting acquires, one per node)."""

    __slots__ = ("client", "pools")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.pools: dict[tuple[str, int], ConnectionPool] = {}

    async def aclose(self) -> None:
        await self.client.aclose()
        for pool in self.pools.values():
            await pool.aclose()


class RedisThrottle:
    """Per-key throttle state in Redis, shared by every process and host that points here.

    ``url`` is a ``redis://`` (or ``rediss://``, ``unix://``) URL, of one node when ``cluster=True`` (a Redis
    Cluster: each key's state lives in one slot, by its hash tag); ``namespace`` prefixes every Redis key;
    ``lease_ttl`` bounds how long a killed worker's turn blocks the key; ``fallback`` is ``"fail"`` (raise
    :class:`~odapi_async.ThrottleUnavailable`) or ``"local"`` (this process's throttle alone, one WARNING)
    while Redis is unreachable; ``acquire_timeout`` bounds the wait for one turn.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        namespace: str = "odapi",
        lease_ttl: float = 30.0,
        fallback: Literal["fail", "local"] = "fail",
        acquire_timeout: float = 600.0,
        connect_timeout: float = 1.0,
        command_timeout: float = 2.0,
        retry_down: float = 2.0,
        local: ProcessThrottle | None = None,
        cluster: bool = False,
    ) -> None:
        require_extra("redis", "RedisThrottle")
        if fallback not in ("fail", "local"):
            raise ValueError(f"fallback must be 'fail' or 'local', not {fallback!r}")
        for name, value in (
            ("lease_ttl", lease_ttl),
            ("acquire_timeout", acquire_timeout),
            ("connect_timeout", connect_timeout),
            ("command_timeout", command_timeout),
            ("retry_down", retry_down),
        ):
            if not isinstance(value, (int, float)) or not 0 < value < _INF:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        check_word("namespace", namespace)
        self._url = url
        self.where: str = _display(url)
        """The Redis server, for messages: scheme, host, port and database (never a password)."""
        self.namespace = namespace
        self.lease_ttl: float = float(lease_ttl)
        self.fallback = fallback
        self.cluster = cluster
        self.acquire_timeout: float = float(acquire_timeout)
        self._connect_timeout = float(connect_timeout)
        self._command_timeout = float(command_timeout)
        self._retry_down = float(retry_down)
        self.local: ProcessThrottle = local if local is not None else ProcessThrottle()
        """The in-process throttle in front of Redis (and the fallback)."""
        self._states: dict[tuple[str, str], _KeyState] = {}
        self._lock = threading.Lock()
        self._loops: PerLoop[_LoopClient] = PerLoop(self._connect, _LoopClient.aclose)
        self._down_until = -_INF  # fallback="local": Redis is not asked again before this
        self._down_logged = False
        self._background: set[asyncio.Task[Any]] = set()
        # fallback="fail": the requests waiting for their local turn (each a future of its own loop, resolved
        # with the message when Redis fails), and per loop with such waiters, a task asking Redis if it is there.
        self._outage_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[str]]] = set()
        self._watchers: dict[
            asyncio.AbstractEventLoop, asyncio.Future[None]
        ] = {}  # one per loop with waiters

    def __repr__(self) -> str:
        return f"<RedisThrottle {self.where} namespace={self.namespace} keys={len(self._states)}>"

    # -- ThrottleBackend -------------------------------------------------------------------------------------

    def configure(self, mode: Mode, key_id: str, settings: KeySettings) -> None:
        self.local.configure(mode, key_id, settings)
        state = self._state(mode, key_id)
        if settings != state.settings:
            state.settings = settings
            state.margin.set_fixed(settings.safety_margin)
            if settings.tier != "auto":
                state.learned = False

    def slot(
        self, mode: Mode, key_id: str, priority: Priority = "bulk", *, retry: bool = False
    ) -> AbstractAsyncContextManager[RedisSlot]:
        return RedisSlot(self, mode, key_id, priority, retry)

    def interval(self, mode: Mode, key_id: str) -> float:
        state = self._state(mode, key_id)
        return (
            state.settings.interval(mode, state.learned)
            if state.learned
            else self.local.interval(mode, key_id)
        )

    def max_in_flight(self, mode: Mode, key_id: str) -> int:
        return self.local.max_in_flight(mode, key_id)

    def stats(self, key_id: str | None = None) -> dict[tuple[str, str], ThrottleStats]:
        found = self.local.stats(key_id)
        for (mode, kid), st in found.items():
            state = self._states.get((mode, kid))
            if state is not None and state.learned:
                found[(mode, kid)] = replace(
                    st, tier="read_all", interval=self.interval(cast(Mode, mode), kid)
                )
        return found

    # -- extras ----------------------------------------------------------------------------------------------

    def redis_stats(self, key_id: str | None = None) -> dict[tuple[str, str], RedisCounters]:
        """What each (mode, key) cost in Redis from this process (the live counters, not a copy)."""
        with self._lock:
            return {k: s.counters for k, s in self._states.items() if key_id is None or k[1] == key_id}

    async def aclose(self) -> None:
        """Close the running loop's Redis connections (a loop that ends closes its own anyway)."""
        await self._loops.close_here()

    # -- internals -------------------------------------------------------------------------------------------

    def _state(self, mode: Mode, key_id: str) -> _KeyState:
        found = self._states.get((mode, key_id))
        if found is None:
            with self._lock:
                found = self._states.get((mode, key_id))
                if found is None:
                    settings = self.local.key(mode, key_id).settings
                    keys = state_keys(self.namespace, mode, key_id)
                    found = self._states[(mode, key_id)] = _KeyState(keys, settings)
        return found

    def _connect(self) -> _LoopClient:
        return _LoopClient(
            connect(
                self._url,
                cluster=self.cluster,
                connect_timeout=self._connect_timeout,
                read_timeout=self._command_timeout,
            )
        )

    def _client(self) -> Client:
        return self._loops.here().client

    async def _call(self, state: _KeyState, script: Script, args: Sequence[str | int]) -> Any:
        """One script decision (``EVALSHA``; after ``NOSCRIPT`` the script is sent whole, once)."""
        counters = state.counters
        started = _clock()
        counters.calls += 1
        reply = await run_script(self._client(), script, state.keys, args, lambda: _count_noscript(counters))
        counters.latencies.append(_clock() - started)
        return reply

    async def _call_then_pickup(self, state: _KeyState, script: Script, args: Sequence[str | int]) -> Any:
        """``script`` (one that may hand a lease over), then ``PICKUP`` in the same round trip: a lease handed
        to a waiter that died in line is passed on at once (``_redis_scripts``). Returns ``script``'s reply."""
        from redis.exceptions import NoScriptError

        counters = state.counters
        keys = state.keys
        started = _clock()
        counters.calls += 1
        pipe = self._client().pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        pipe.evalsha(PICKUP.sha, len(keys), *keys, _KEEP_MS)
        replies = await pipe.execute(raise_on_error=False)
        counters.latencies.append(_clock() - started)
        for reply in replies:
            if isinstance(reply, Exception) and not isinstance(reply, NoScriptError):
                raise reply
        reply, picked = replies
        client = self._client()
        if isinstance(reply, NoScriptError):  # a restart or SCRIPT FLUSH: each sent whole, once
            _count_noscript(counters)
            reply = await client.eval(script.body, len(keys), *keys, *args)
        if isinstance(picked, NoScriptError):
            _count_noscript(counters)
            await client.eval(PICKUP.body, len(keys), *keys, _KEEP_MS)
        return reply

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        """Run ``coro`` as a task that a cancellation of the caller does not cut off halfway."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _unavailable(self, exc: BaseException) -> ThrottleUnavailable:
        """Redis failed and fallback="fail": the error, told at once to every request waiting in this process."""
        message = (
            f"the shared throttle at {self.where} did not answer ({type(exc).__name__}: {exc}); the request "
            "was not sent. RedisThrottle(..., fallback='local') runs on this process's throttle meanwhile."
        )
        with self._lock:
            waiting, self._outage_waiters = self._outage_waiters, set()
        for loop, future in waiting:
            with contextlib.suppress(RuntimeError):  # that loop has closed: its waiters are gone with it
                loop.call_soon_threadsafe(_set_once, future, message)
        return ThrottleUnavailable(message)

    async def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """While requests of this loop wait for their local turn, ask Redis every :data:`_WATCH_EVERY` s
        whether it is there: nobody else may be talking to it (the next in line only asks at its turn)."""
        from redis.exceptions import RedisError

        try:
            while any(waiting is loop for waiting, _future in self._outage_waiters):
                try:
                    await asyncio.wait_for(self._client().ping(), self._command_timeout)
                except (RedisError, OSError, asyncio.TimeoutError) as exc:
                    if isinstance(exc, asyncio.TimeoutError):
                        exc = TimeoutError(f"no answer to PING within {self._command_timeout:g} s")
                    self._unavailable(exc)
                    return
                await asyncio.sleep(_WATCH_EVERY)
        finally:
            self._watchers.pop(loop, None)

    async def _local_turn(self, local: ThrottleSlot) -> None:
        """Wait for this process's turn on the key, or until Redis is found unreachable meanwhile.

        The requests queued here behind one that asks Redis would otherwise each learn of an outage only at
        its own turn, one interval after the other (5 s apart at read_all); an outage ends every wait at once.
        """
        if self.fallback == "local":
            await local.__aenter__()  # an outage does not stop anyone: the local throttle goes on alone
            return
        loop = asyncio.get_running_loop()
        outage: asyncio.Future[str] = loop.create_future()
        entry = (loop, outage)
        with self._lock:
            self._outage_waiters.add(entry)
        if loop not in self._watchers:
            self._watchers[loop] = self._spawn(self._watch(loop))
        turn = asyncio.ensure_future(local.__aenter__())
        try:
            await asyncio.wait((turn, outage), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            _abandon(turn, local)
            raise
        finally:
            with self._lock:
                self._outage_waiters.discard(entry)
        if turn.done():
            turn.result()  # the local turn's own error, if it failed
            if not outage.done():
                return  # the turn came first
        _abandon(turn, local)  # the outage came first: the turn takes nothing, the request is not sent
        raise ThrottleUnavailable(outage.result())

    def _went_down(self, exc: BaseException) -> bool:
        """Redis failed: with fallback="local", note it (one WARNING per outage) and say to go on locally."""
        if self.fallback != "local":
            return False
        self._down_until = _clock() + self._retry_down
        if not self._down_logged:
            self._down_logged = True
            logger.warning(
                "the shared throttle at %s is unreachable (%s); this process throttles on its own until it "
                "answers again: other processes sharing a key are not coordinated meanwhile",
                self.where,
                type(exc).__name__,
            )
        return True

    def _came_back(self) -> None:
        if self._down_logged:
            self._down_logged = False
            logger.info("the shared throttle at %s answers again", self.where)

    async def _acquire(self, slot: RedisSlot) -> None:
        from redis.exceptions import RedisError

        state = slot._state
        if _clock() < self._down_until:
            state.counters.local_only += 1
            return
        lease_id = secrets.token_hex(8)
        slot._lease_id = lease_id
        terms = self._terms(state, slot._mode)
        lane = "i" if slot._priority == "interactive" else "b"
        deadline = _clock() + self.acquire_timeout
        while True:
            block = max(min(self.lease_ttl, deadline - _clock()), _MIN_BLOCK)
            asked = _clock()
            call = self._spawn(self._ask(state, lease_id, terms, block, lane, slot._retry))
            try:
                decided = await asyncio.shield(call)
            except asyncio.CancelledError:
                # LEAVE takes back a lease handed over and not yet read, and ends the BLPOP; a lease the BLPOP
                # did read is given back when the call answers.
                self._spawn(self._leave(state, lease_id))
                call.add_done_callback(lambda done: self._drop_granted(slot, done))
                raise
            except (RedisError, OSError) as exc:
                if self._went_down(exc):
                    state.counters.local_only += 1
                    return
                raise self._unavailable(exc) from None
            self._came_back()
            if decided is not None and decided.startswith("G "):
                _g, member, wait_ms, learned = decided.split()
                state.learned = learned == "1"
                wait = max(float(wait_ms), 0.0) / 1000
                slot._member = member
                # The reserved start on this clock, taken early rather than late, so that the departure
                # reported at release is never too early: the script ran after ``asked``, and a lease handed
                # over later ran about a round trip before the answer came (the usual one: this call's may
                # include connecting and loading the script).
                slot._start = max(asked, _clock() - state.round_trip()) + wait
                state.counters.requests += 1
                self._arm_renewal(slot)
                if wait > 0:
                    await asyncio.sleep(wait)  # a cancellation here: __aenter__ gives the lease back
                return
            # The BLPOP ended (after ``block``) without a decision: ask again, keeping the place in line.
            state.counters.busy += 1
            if _clock() >= deadline:
                self._spawn(self._leave(state, lease_id))
                raise ThrottleUnavailable(
                    f"no turn on the shared throttle at {self.where} within {self.acquire_timeout:g} s; "
                    "the request was not sent"
                )

    def _terms(self, state: _KeyState, mode: Mode) -> str:
        """This caller's spacing terms, as ``_throttle.redis_scripts`` reads them (ms)."""
        settings = state.settings
        initial, cap, floor, fixed = state.margin.terms(settings.interval(mode, state.learned))
        return " ".join(
            (
                _ms(settings.interval(mode, False)),
                _ms(settings.interval(mode, True)),
                _ms(initial),
                _ms(cap),
                _ms(floor),
                _ms(fixed) if fixed is not None else "-1",
                _ms(self.lease_ttl),
                str(settings.max_in_flight),
            )
        )

    async def _ask(
        self, state: _KeyState, lease_id: str, terms: str, block: float, lane: str, front: bool
    ) -> str | None:
        """One acquire round trip: ``ACQUIRE`` and the ``BLPOP`` on this caller's list, sent together.

        Returns the decision read from the list (``G ...`` or ``C``; None when the BLPOP timed out). After
        ``NOSCRIPT`` the script is sent whole on the other client while the BLPOP keeps waiting here.
        """
        from redis.exceptions import NoScriptError, RedisError, TimeoutError

        counters = state.counters
        keys = state.keys
        args = (lease_id, terms, _KEEP_MS, _ms(block + _TICKET_GRACE), lane, "1" if front else "0")
        found = self._loops.here()
        pool = await blocking_pool(found.client, keys[0], self._url, self._connect_timeout, found.pools)
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        sent = False
        try:
            counters.calls += 1
            started = _clock()
            await conn.send_packed_command(
                conn.pack_commands(
                    [
                        ("EVALSHA", ACQUIRE.sha, len(keys), *keys, *args),
                        ("BLPOP", grant_key(keys[0], lease_id), f"{block:.3f}"),
                    ]
                )
            )
            sent = True
            try:
                first = await asyncio.wait_for(conn.read_response(), self._command_timeout)
            except NoScriptError:  # Redis restarted or SCRIPT FLUSH: EVAL loads it, and queues this caller
                _count_noscript(counters)
                first = await self._client().eval(ACQUIRE.body, len(keys), *keys, *args)
            counters.latencies.append(_clock() - started)
            decided = await asyncio.wait_for(
                self._decision(conn, state, args, first), block + self._command_timeout
            )
        except (asyncio.TimeoutError, RedisError, OSError) as exc:
            if sent:  # its place in line (or a lease handed to it) is given back; else it expires by itself
                self._spawn(self._leave(state, lease_id))
            if isinstance(exc, asyncio.TimeoutError):
                raise TimeoutError(f"no answer from {self.where} in time") from None
            raise
        finally:
            await pool.release(conn)
        return decided

    async def _decision(
        self, conn: Any, state: _KeyState, args: Sequence[str | int], first: Any
    ) -> str | None:
        """The BLPOP's answer. Meanwhile, when the oldest lease expires, run ``ACQUIRE`` again: a holder that
        died hands nothing over, and only a script call sees that its lease has expired."""
        read = asyncio.ensure_future(conn.read_response())
        try:
            while True:
                expires = float(first[1]) / 1000 if first[0] == 0 and float(first[1]) >= 0 else None
                done, _pending = await asyncio.wait(
                    {read}, timeout=None if expires is None else expires + 0.005
                )
                if done:
                    popped = read.result()
                    return str(popped[1]) if popped else None
                state.counters.busy += 1
                first = await self._call(state, ACQUIRE, args)
        finally:
            if not read.done():  # a timeout or an error: redis-py drops the connection, with its BLPOP
                read.cancel()
                await asyncio.gather(read, return_exceptions=True)

    async def _leave(self, state: _KeyState, lease_id: str) -> None:
        """A waiter gives up its place in line, or a lease handed to it and not yet read (best effort)."""
        from redis.exceptions import RedisError

        with contextlib.suppress(RedisError, OSError):
            await self._call_then_pickup(state, LEAVE, [lease_id, _KEEP_MS])

    def _drop_granted(self, slot: RedisSlot, call: asyncio.Future[Any]) -> None:
        """A cancelled acquire's call answered: give back a lease it read (LEAVE could not take it back)."""
        if call.cancelled() or call.exception() is not None:
            return
        decided = call.result()
        if decided is not None and decided.startswith("G "):
            slot._member = decided.split()[1]
            self._spawn(self._release(slot, ok=False, never_sent=True))

    def _arm_renewal(self, slot: RedisSlot) -> None:
        # Most requests end long before half the TTL: a timer, not a task, until one does not.
        loop = asyncio.get_running_loop()
        slot._renewer = loop.call_later(self.lease_ttl / 2, self._start_renewing, slot)

    def _start_renewing(self, slot: RedisSlot) -> None:
        slot._renewer = asyncio.ensure_future(self._renew(slot))

    async def _renew(self, slot: RedisSlot) -> None:
        from redis.exceptions import RedisError

        while slot._member:
            try:
                held = await self._call(slot._state, RENEW, [slot._member, _ms(self.lease_ttl)])
            except (RedisError, OSError) as exc:
                logger.warning("could not renew a lease on %s (%s)", self.where, type(exc).__name__)
                held = 1
            if held != 1:
                logger.warning(
                    "key %s (%s): a lease expired while its request ran; the key may overlap",
                    slot._key,
                    slot._mode,
                )
                return
            await asyncio.sleep(self.lease_ttl / 2)

    async def _release(self, slot: RedisSlot, *, ok: bool, never_sent: bool = False) -> None:
        from redis.exceptions import RedisError

        renewer, slot._renewer = slot._renewer, None
        if renewer is not None:
            renewer.cancel()
        member, slot._member = slot._member, ""
        state = slot._state
        settings = state.settings
        mode = slot._mode
        now = _clock()
        interval = settings.interval(mode, state.learned)
        sent = slot._sent
        rtt = now - sent if sent is not None else -1.0
        if ok and sent is not None and interval:
            state.margin.record(rtt)
        throttled = slot._throttled
        retry_after, max_wait = throttled if throttled is not None else (None, _INF)
        if throttled is not None and mode == "remote" and (settings.tier != "auto" or state.learned):
            state.margin.widen(interval)  # the tier was right: the margin was too small
        running = min(max(interval, state.margin.slowest()), MAX_CANCEL_HOLD)
        args: list[str | int] = [
            member,
            _ms(max(sent - slot._start, 0.0)) if sent is not None else -1,
            2 if never_sent else 1 if ok else 0,
            _ms(rtt) if rtt >= 0 else -1,
            1 if throttled is not None else 0,
            _ms(retry_after) if retry_after is not None else -1,
            _ms(min(max_wait, 1e9)),
            _ms(running),
            1 if mode == "remote" else 0,
            1 if settings.tier == "auto" else 0,
            _ms(settings.interval(mode, False)),
            _ms(settings.interval(mode, True)),
            _ms(settings.intervals["full"]),
            _KEEP_MS,
        ]
        try:
            learned_now, learned = await asyncio.shield(
                self._spawn(self._call_then_pickup(state, RELEASE, args))
            )
        except (RedisError, OSError) as exc:
            # The answer is in: do not lose it over the lease, which expires by itself.
            logger.warning(
                "could not release a lease on %s (%s); it expires within %g s",
                self.where,
                type(exc).__name__,
                self.lease_ttl,
            )
            return
        state.learned = learned == 1
        if learned_now == 1:
            logger.warning(
                "key %s: the server throttled a request; tier auto now spaces requests %.3g s apart (shared)",
                slot._key,
                settings.interval(mode, True),
            )


def _count_noscript(counters: RedisCounters) -> None:
    counters.noscript += 1
    counters.calls += 1  # the script, sent whole


def _abandon(turn: asyncio.Future[Any], local: ThrottleSlot) -> None:
    """A local turn no longer wanted: cancel it, or give it back if it was granted (now or as it ends)."""

    def give_back(done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            local.give_back()

    if turn.done():
        give_back(turn)
    else:
        turn.cancel()
        turn.add_done_callback(give_back)


def _set_once(future: asyncio.Future[str], message: str) -> None:
    if not future.done():
        future.set_result(message)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def _display(url: str) -> str:
    """The URL without user or password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
