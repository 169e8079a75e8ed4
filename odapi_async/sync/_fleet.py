"""A sync fleet: several workers with the same offices file split the offices through Redis leases.

Each office is synced by one worker at a time: a worker takes an office's **lease** (a Redis key with a TTL,
renewed every third of the TTL while the office syncs) before it starts, and gives it up when the office is
done. A worker that dies stops renewing: its lease expires and another worker takes the office over. Every
lease carries a **fencing token**, a number that grows with every new holder of the office; "done" is recorded
only by the holder whose token is still current, so a worker paused past its TTL cannot mark an office that a
newer holder is syncing, and the store drops its writes once a newer holder has written there
(``SyncStore.fence``: checked in each write's transaction; it matters when workers share one database).

Work is counted in **rounds**: a round is one pass over the offices of the file, and every worker leaves when
every office of its round is done. Workers given the same round name (``odapi sync --round``, e.g. the time of
a scheduled run) share one pass: a worker that starts after the others finished finds nothing left to do.
Without a name, rounds are numbered: a worker joins the open round, or opens the next one when the last is
complete. So each office is synced exactly once per round, whatever the number of workers (a worker that dies
mid-office is the exception: its office is synced again).

Redis keys: ``NS:fleet:{GROUP}:round`` (the numbered round), ``…:done:ROUND`` (a set), ``…:lease:OFFICE``, ``…:fence:OFFICE`` —
one hash tag per group. The throttle is shared too when the sessions use a ``RedisThrottle`` (``odapi sync
--redis`` does). See ``docs/sync.md``, "A fleet of workers".
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio

from odapi_async._exceptions import OpenDentalError
from odapi_async._syncspec import SyncSpec
from odapi_async._util.optional import require_extra
from odapi_async._util.redis_client import Script, check_word, connect, run_script
from odapi_async.sync._engine import OfficeConfig, OfficeProgress, sync_office
from odapi_async.sync._sink import SyncSink
from odapi_async.sync._store import StoreFileError

if TYPE_CHECKING:
    from odapi_async._util.redis_client import Client

__all__ = ["FleetLeases", "sync_fleet"]

logger = logging.getLogger("odapi_async.sync")

# KEYS: round number, done set of round EXPECTED. ARGV: EXPECTED (the number the caller read), office names.
# Opens round 1, or the next round when every office of the current one is done. Returns {round, 1}, or
# {current, 0} when the round moved since the caller read it (read again: every key a script touches is
# declared, as Redis Cluster requires).
_BEGIN = Script(
    "fleet-begin",
    """
local r = tonumber(redis.call('GET', KEYS[1]) or '0')
if r ~= tonumber(ARGV[1]) then return {r, 0} end
if r > 0 then
  for i = 2, #ARGV do
    if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 0 then return {r, 1} end
  end
end
return {redis.call('INCR', KEYS[1]), 1}
""",
)

# KEYS: lease, fence, done. ARGV: holder, ttl ms, office. Returns {token, 0} when taken, {0, ms left} when
# another worker holds it, {-1, 0} when the office is done this round.
_CLAIM = Script(
    "fleet-claim",
    """
if redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 1 then return {-1, 0} end
local left = redis.call('PTTL', KEYS[1])
if left > 0 then return {0, left} end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '#' .. token, 'PX', ARGV[2])
return {token, 0}
""",
)

# KEYS: lease. ARGV: holder#token, ttl ms. Returns 1 when still held (and renewed).
_RENEW = Script(
    "fleet-renew",
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
""",
)

# KEYS: lease, done. ARGV: holder#token, office, keep ms. Records the office done (only for the current holder).
_FINISH = Script(
    "fleet-finish",
    """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('DEL', KEYS[1])
return 1
""",
)

#: The longest a worker waits before it looks again at offices other workers hold.
_LOOK_AGAIN = 1.0
#: How long a round's record of done offices is kept.
_KEEP_MS = 7 * 24 * 3600 * 1000


class LeaseLost(OpenDentalError):
    """Another worker holds this office now (this worker's lease expired); its sync was stopped."""


class FleetLeases:
    """Office leases in Redis for one fleet (``group``): see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        group: str = "default",
        namespace: str = "odapi",
        ttl: float = 30.0,
        cluster: bool = False,
    ) -> None:
        require_extra("redis", "FleetLeases (odapi sync --redis)")
        check_word("group", group)
        check_word("namespace", namespace)
        if not ttl > 0:
            raise ValueError("ttl must be a positive number of seconds")
        self._url = url
        self.ttl: float = float(ttl)
        self.holder: str = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._base = f"{namespace}:fleet:{{{group}}}"
        self._cluster = cluster
        self._client: Client | None = None

    async def __aenter__(self) -> FleetLeases:
        self._client = connect(self._url, cluster=self._cluster, connect_timeout=2.0, read_timeout=5.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        assert self._client is not None, "use FleetLeases in 'async with'"
        return await run_script(self._client, script, keys, args)

    def _office(self, office: str) -> tuple[str, str]:
        return f"{self._base}:lease:{office}", f"{self._base}:fence:{office}"

    def _done(self, round_no: str) -> str:
        return f"{self._base}:done:{round_no}"

    async def begin_round(self, offices: Sequence[str], name: str | None = None) -> str:
        """The round to work on: ``name`` if given, else the open numbered one (or a new one if it is complete)."""
        if name is not None:
            return f"name:{name}"  # apart from the numbered rounds
        counter = f"{self._base}:round"
        assert self._client is not None, "use FleetLeases in 'async with'"
        expected = int(await self._client.get(counter) or 0)
        for _ in range(10):  # bounded: the round moves only when one completes
            current, ok = await self._run(_BEGIN, [counter, self._done(str(expected))], [expected, *offices])
            if ok == 1:
                return str(current)
            expected = int(current)
        raise RuntimeError("the fleet's round kept moving; try again")

    async def claim(self, round_no: str, office: str) -> tuple[int, float]:
        """``(token, 0)`` taken; ``(0, seconds until it may free)`` held elsewhere; ``(-1, 0)`` done."""
        lease, fence = self._office(office)
        token, left = await self._run(
            _CLAIM, [lease, fence, self._done(round_no)], [self.holder, int(self.ttl * 1000), office]
        )
        return int(token), int(left) / 1000

    async def renew(self, office: str, token: int) -> bool:
        lease, _ = self._office(office)
        return bool(await self._run(_RENEW, [lease], [f"{self.holder}#{token}", int(self.ttl * 1000)]))

    async def finish(self, round_no: str, office: str, token: int) -> bool:
        lease, _ = self._office(office)
        args: list[str | int] = [f"{self.holder}#{token}", office, _KEEP_MS]
        return bool(await self._run(_FINISH, [lease, self._done(round_no)], args))


async def sync_fleet(
    offices: Sequence[OfficeConfig],
    store: SyncSink,
    specs: Sequence[SyncSpec],
    leases: FleetLeases,
    *,
    reconcile: bool = False,
    concurrency: int = 4,
    progress: dict[str, OfficeProgress] | None = None,
    round_name: str | None = None,
) -> list[OfficeProgress]:
    """Sync this worker's share of one round of ``offices``; returns the offices it synced (with their outcome)."""
    by_name = {o.name: o for o in offices}
    names = list(by_name)
    round_no = await leases.begin_round(names, round_name)
    logger.info("fleet: %s works on round %s", leases.holder, round_no)
    mine: list[OfficeProgress] = []
    fatal: list[StoreFileError] = []  # the store failed as a whole: every slot stops (see sync_offices)
    stop_all = anyio.CancelScope()
    start = secrets.randbelow(len(names)) if names else 0  # workers start on different offices

    async def sync_one(name: str, token: int) -> None:
        entry = (progress or {}).get(name) or OfficeProgress(name)
        mine.append(entry)
        lost = False
        # Each task keeps its own error (the group would wrap it in an ExceptionGroup the excepts below miss).
        failed: list[Exception] = []
        try:
            async with anyio.create_task_group() as tg:

                async def keep() -> None:
                    nonlocal lost
                    while True:
                        await anyio.sleep(leases.ttl / 3)
                        try:
                            held = await leases.renew(name, token)
                        except Exception as exc:
                            failed.append(exc)
                            tg.cancel_scope.cancel()
                            return
                        if not held:
                            lost = True
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(keep)
                store.fence(name, token)  # a write after a newer holder's is rolled back (FencedOut)
                try:
                    await sync_office(by_name[name], store, specs, reconcile=reconcile, progress=entry)
                except Exception as exc:
                    failed.insert(0, exc)
                finally:
                    tg.cancel_scope.cancel()
            if failed:
                raise failed[0]
        except StoreFileError as exc:
            entry.error = f"{type(exc).__name__}: {exc}"
            fatal.append(exc)
            stop_all.cancel()
        except (OpenDentalError, OSError, ValueError) as exc:
            entry.error = f"{type(exc).__name__}: {exc}"
        finally:
            entry.finished = time.monotonic()
        if fatal:
            return  # the office stays unfinished in the round: its lease lapses, another worker takes it
        if lost:
            # What the store said (FencedOut: a write refused in the database) is kept beside the reason.
            why = f" ({entry.error})" if entry.error else ""
            entry.error = f"the office's lease expired while it synced; another worker took it over{why}"
        elif not await leases.finish(round_no, name, token):
            why = f" ({entry.error})" if entry.error else ""
            entry.error = f"the office's lease was lost before it finished; another worker took it over{why}"

    async def slot() -> None:
        while True:
            soonest: float | None = None
            pending = False
            for i in range(len(names)):
                name = names[(start + i) % len(names)]
                token, left = await leases.claim(round_no, name)
                if token < 0:
                    continue
                pending = True
                if token == 0:
                    soonest = left if soonest is None else min(soonest, left)
                    continue
                await sync_one(name, token)
                break
            else:
                if not pending:
                    return  # every office of the round is done
                # Every office left is held by another worker: look again when the first lease may free, or in
                # a second (a holder that finishes frees its office sooner; this worker then has nothing to do).
                await anyio.sleep(min(max(soonest or 0.0, 0.05), _LOOK_AGAIN))

    with stop_all:
        async with anyio.create_task_group() as tg:
            for _ in range(max(1, concurrency)):
                tg.start_soon(slot)
    if fatal:
        raise fatal[0]
    return mine
