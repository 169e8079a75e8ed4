"""``odapi sync --redis``: a fleet of worker processes splits the offices of one file through Redis leases."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis
from clitools import _env
from redis_support import NEEDS_REDIS, RedisServer

pytestmark = NEEDS_REDIS

OFFICES = [f"o{n:02d}" for n in range(1, 13)]


def offices_file(emulator: Any, path: Path) -> Path:
    entries = "".join(f'\n[offices.{name}]\ncustomer_key = "k-a"\n' for name in OFFICES)
    path.write_text(
        f'[defaults]\nendpoints = {{ local = "{emulator.endpoints["local"]}" }}\nmodes = ["local"]\n{entries}',
        encoding="utf-8",
    )
    return path


def worker(
    emulator: Any, redis_url: str, offices: Path, db: Path, ttl: float = 30.0, *extra: str
) -> subprocess.Popen[str]:
    args = [
        "sync", "--offices", str(offices), "--db", str(db), "--resources", "patients", "--json",
        "--developer-key", "dev-cli", "--redis", redis_url, "--lease-ttl", str(ttl), *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "odapi_async.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def synced(proc: subprocess.Popen[str]) -> list[str]:
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err[-3000:]
    offices = json.loads(out)["offices"]
    assert all(o["ok"] for o in offices), offices
    return [o["office"] for o in offices]


def done_offices(redis_url: str, round_no: int | str = 1) -> set[str]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        return set(r.smembers(f"odapi:fleet:{{default}}:done:{round_no}"))


@pytest.mark.slow("three worker processes sync every office for two rounds (15 s under load)")
def test_three_workers_sync_each_office_once_per_round(
    emulator: Any, redis_server: RedisServer, tmp_path
) -> None:
    offices = offices_file(emulator, tmp_path / "offices.toml")
    url = redis_server.url
    # One named round (a scheduled run): however staggered their starts, the three share one pass.
    procs = [
        worker(emulator, url, offices, tmp_path / f"w{i}.sqlite", 30.0, "--round", "r1") for i in range(3)
    ]
    try:
        shares = [synced(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)
    every = [name for share in shares for name in share]
    assert sorted(every) == OFFICES  # each office once, by one worker
    assert done_offices(url, "name:r1") == set(OFFICES)
    late = worker(emulator, url, offices, tmp_path / "late.sqlite", 30.0, "--round", "r1")
    assert synced(late) == []  # the round is complete: nothing left to do
    # Numbered rounds: a worker opens round 1, a later one (round 1 complete) opens round 2.
    for round_no in (1, 2):
        assert sorted(synced(worker(emulator, url, offices, tmp_path / "w0.sqlite"))) == OFFICES
        assert done_offices(url, round_no) == set(OFFICES)


@pytest.mark.slow("waits out a 2 s lease TTL behind 0.5 s requests, in subprocesses (9 s under load)")
def test_a_killed_workers_offices_are_taken_over_after_the_ttl(
    emulator: Any, redis_server: RedisServer, tmp_path
) -> None:
    offices = offices_file(emulator, tmp_path / "offices.toml")
    root = emulator.endpoints["local"].rsplit("/api/v1", 1)[0]
    httpx2.put(f"{root}/_emulator/faults", json={"listener": "local", "latency": 0.5}, timeout=10)
    ttl = 2.0
    try:
        first = worker(emulator, redis_server.url, offices, tmp_path / "first.sqlite", ttl=ttl)
        held: list[str] = []
        with redis.Redis.from_url(redis_server.url, decode_responses=True) as r:
            deadline = time.monotonic() + 30
            while not held:  # bounded: until the first worker holds offices (it is slow: 0.5 s a request)
                assert time.monotonic() < deadline and first.poll() is None
                held = [k.rsplit(":", 1)[1] for k in r.keys("odapi:fleet:{default}:lease:*")]
                time.sleep(0.02)
        first.kill()  # SIGKILL mid-office: no release
        first.communicate(timeout=10)
        with redis.Redis.from_url(
            redis_server.url, decode_responses=True
        ) as r:  # its leases, until they expire
            held = [k.rsplit(":", 1)[1] for k in r.keys("odapi:fleet:{default}:lease:*")]
        killed = time.monotonic()
        httpx2.put(f"{root}/_emulator/faults", json={"listener": "local", "latency": 0.0}, timeout=10)
        others = [
            worker(emulator, redis_server.url, offices, tmp_path / f"w{i}.sqlite", ttl=ttl) for i in range(2)
        ]
        shares = [synced(p) for p in others]
        elapsed = time.monotonic() - killed
    finally:
        httpx2.put(f"{root}/_emulator/faults", json={"listener": "local", "latency": 0.0}, timeout=10)
    taken_over = set(held) & {name for share in shares for name in share}
    assert taken_over == set(held)  # every office the dead worker held was synced by another
    with redis.Redis.from_url(redis_server.url, decode_responses=True) as r:
        fences = {name: int(r.get(f"odapi:fleet:{{default}}:fence:{name}") or 0) for name in OFFICES}
    # Fencing tokens: a taken-over office had two holders (the dead one, then its heir); any other office one.
    assert fences == {name: 2 if name in held else 1 for name in OFFICES}
    assert elapsed >= ttl * 0.9  # the heirs could start them only once the dead worker's leases expired
    assert done_offices(redis_server.url) == set(OFFICES)
    every = [name for share in shares for name in share]
    assert len(every) == len(set(every))  # the survivors never synced one office twice


def test_round_needs_redis(tmp_path) -> None:
    from clitools import odapi

    run = odapi("sync", "--db", str(tmp_path / "x.sqlite"), "--round", "r1", "--developer-key", "d")
    assert run.returncode == 2 and "--round needs --redis" in run.stderr
