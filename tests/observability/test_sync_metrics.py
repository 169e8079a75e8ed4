"""``odapi sync --metrics``: a real scrape of ``/metrics`` during a sync (a subprocess against an emulator in its
own process), parsed with prometheus-client's parser; office names as labels, never keys."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from redis_support import HAVE_REDIS, RedisServer  # noqa: E402

from odapi_async.sync import OfficeProgress, SyncStore, sync_specs  # noqa: E402
from odapi_async.sync._fleet import FleetLeases  # noqa: E402
from odapi_async.sync._metrics import SyncMetrics, make_server, parse_listen  # noqa: E402

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEV = "DEVKEY-metrics-0123456789abcdef"
NORTH = "NORTHKEY-metrics-aaaaaaaaaaaa"
SOUTH = "SOUTHKEY-metrics-bbbbbbbbbbbb"
RESOURCES = "patients,procedurelogs"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAPI_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="module")
def endpoints() -> Iterator[dict[str, str]]:
    cmd = [sys.executable, "-m", "odapi_async.emulator", "--print-endpoints-json", "--developer-key", DEV]
    cmd += ["--port-local", "0", "--port-service", "0", "--port-remote", "0", "--patients", "150"]
    cmd += ["--customer-key", f"{NORTH}=full", "--customer-key", f"{SOUTH}=read_all"]
    cmd += ["--interval", "full=0.005", "--interval", "read_all=0.08"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once it listens
    if not line:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {proc.communicate(timeout=10)[1][-2000:]}")
    try:
        yield json.loads(line)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``/metrics`` parsed: sample name → {labels: value}."""
    text = httpx2.get(url, timeout=5).text
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(samples: dict[str, Any], name: str, office: str) -> float | None:
    return samples.get(name, {}).get((("office", office),))


def number(samples: dict[str, Any], name: str, office: str) -> float:
    """A sample that must be there (for comparisons)."""
    found = value(samples, name, office)
    assert found is not None, f"{name} for {office} not scraped"
    return found


def offices_file(endpoints: dict[str, str], path: Path) -> Path:
    # Over Remote: north's interval is short (it finishes first), south's long (it is still running then).
    path.write_text(
        f"""
developer_key = "{DEV}"
[defaults]
endpoints = {{ remote = "{endpoints["remote"]}" }}
modes = ["remote"]
[offices.north]
customer_key = "{NORTH}"
tier = "full"
intervals = {{ full = 0.005 }}
[offices.south]
customer_key = "{SOUTH}"
tier = "read_all"
intervals = {{ read_all = 0.08 }}
""",
        encoding="utf-8",
    )
    path.chmod(0o600)  # it holds keys: odapi sync warns about a file others can read
    return path


def start_sync(*args: str) -> tuple[subprocess.Popen[str], str]:
    """``odapi sync ARGS --metrics 127.0.0.1:0`` running, and the URL of its ``/metrics``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "odapi_async.cli", "sync", *args, "--quiet", "--metrics", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert proc.stderr is not None
    first = proc.stderr.readline().strip()  # printed before the sync starts
    if not first.startswith("metrics on http://127.0.0.1:"):
        proc.kill()
        raise AssertionError(f"{first}\n{proc.communicate(timeout=20)[1]}")
    return proc, first.removeprefix("metrics on ")


def test_a_scrape_during_a_sync_shows_each_office(endpoints: dict[str, str], tmp_path: Path) -> None:
    db, offices = tmp_path / "one.sqlite", offices_file(endpoints, tmp_path / "offices.toml")
    proc, url = start_sync("--db", str(db), "--offices", str(offices), "--resources", RESOURCES)
    try:
        health = httpx2.get(url.replace("/metrics", "/healthz"), timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        seen: list[dict[str, Any]] = []
        texts: list[str] = []
        deadline = time.monotonic() + 90
        # Scrape until north is done and south is still syncing (rows written, not finished).
        while True:
            assert proc.poll() is None, "the sync ended before a scrape saw north done and south running"
            assert time.monotonic() < deadline, f"no such scrape; the last: {seen[-1:]}"
            texts.append(httpx2.get(url, timeout=5).text)
            samples = scrape(url)
            seen.append(samples)
            north_done = value(samples, "odapi_sync_last_success_timestamp_seconds", "north") is not None
            south_rows = value(samples, "odapi_sync_rows_written_total", "south") or 0
            south_running = value(samples, "odapi_sync_office_running", "south") == 1
            if north_done and south_rows > 0 and south_running:
                break
            time.sleep(0.02)  # a scrape interval, not a wait for an outcome: the loop checks the outcome
        _, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr

    last = seen[-1]
    now = time.time()
    assert now - 120 < last["odapi_sync_last_success_timestamp_seconds"][(("office", "north"),)] <= now
    assert 0 <= number(last, "odapi_sync_seconds_behind", "north") < 120
    assert value(last, "odapi_sync_seconds_behind", "south") == float("inf")  # never synced whole yet
    assert number(last, "odapi_sync_office_running", "north") == 0
    assert number(last, "odapi_sync_failures_total", "north") == 0
    # North was done before this scrape: its counters equal what the store holds.
    with sqlite3.connect(db) as conn:
        stored = sum(
            conn.execute(f"SELECT count(*) FROM {table} WHERE office = 'north'").fetchone()[0]
            for table in RESOURCES.split(",")
        )
    conn.close()
    assert number(last, "odapi_sync_rows_written_total", "north") == stored > 0
    assert number(last, "odapi_sync_pages_total", "north") >= stored / 100
    assert number(last, "odapi_sync_throttle_waits_total", "south") > 0  # Remote spaced its requests
    assert number(last, "odapi_sync_throttle_wait_seconds_total", "south") > 0
    # Counters never went down between scrapes.
    for before, after in zip(seen, seen[1:]):
        for name in ("odapi_sync_rows_written_total", "odapi_sync_pages_total"):
            for office in ("north", "south"):
                assert (number(after, name, office) or 0) >= (number(before, name, office) or 0)
    # Labels: office names only; no key anywhere in what was served.
    assert value(last, "process_resident_memory_bytes", "north") is None  # no office label there
    assert last["process_resident_memory_bytes"][()] > 0
    for samples in seen:
        for name, labelled in samples.items():
            if not name.startswith("odapi_"):
                continue
            for labels in labelled:
                assert {k for k, _ in labels} == {"office"}
                assert {v for _, v in labels} <= {"north", "south"}
    for text in texts:
        for secret in (DEV, NORTH, SOUTH):
            assert secret not in text


def test_runs_fold_into_totals_and_health_turns_503_when_every_office_failed(tmp_path: Path) -> None:
    specs = sync_specs(["patients"])
    metrics = SyncMetrics(["a", "b"])
    server = make_server(metrics, "127.0.0.1", 0)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with SyncStore(tmp_path / "s.sqlite") as store:
            first = {"a": OfficeProgress("a", rows=10, pages=1), "b": OfficeProgress("b", rows=5, pages=1)}
            metrics.watch(first, store, specs)
            for entry in first.values():
                entry.finished = time.monotonic()
            assert httpx2.get(base + "/healthz").status_code == 200
            second = {"a": OfficeProgress("a", rows=3, pages=1), "b": OfficeProgress("b")}
            metrics.watch(second, store, specs)  # an --events sweep: a new run
            samples = scrape(base + "/metrics")
            assert number(samples, "odapi_sync_rows_written_total", "a") == 13
            assert number(samples, "odapi_sync_pages_total", "b") == 1
            for entry in second.values():
                entry.error = "Unauthorized: 401"
                entry.finished = time.monotonic()
            health = httpx2.get(base + "/healthz")
            assert health.status_code == 503 and health.json()["status"] == "failing"
            samples = scrape(base + "/metrics")
            assert number(samples, "odapi_sync_failures_total", "a") == 1
            assert "odapi_sync_lease_held" not in samples  # not a fleet worker
            assert httpx2.get(base + "/other").status_code == 404
            fleet = FleetLeases("redis://127.0.0.1:1/0", group="g")  # only its name is read: no connection
            metrics.watch({"a": OfficeProgress("a")}, store, specs, fleet)
            samples = scrape(base + "/metrics")
            assert number(samples, "odapi_sync_lease_held", "a") == 0
            assert samples["odapi_sync_fleet_worker"] == {(("holder", fleet.holder),): 1.0}
    finally:
        server.shutdown()
        server.server_close()


def test_bad_listen_addresses() -> None:
    assert parse_listen("0.0.0.0:9464") == ("0.0.0.0", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("9464", "host:", "host:x", "host:70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(bad)


def test_the_cli_refuses_a_bad_metrics_address(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "odapi_async.cli", "sync", "--db", str(tmp_path / "x.sqlite"),
         "--developer-key", "d", "--customer-key", "c", "--metrics", "nowhere"],
        capture_output=True, text=True, timeout=60, env=_env(),
    )  # fmt: skip
    assert run.returncode == 2
    assert "--metrics: HOST:PORT" in run.stderr


@pytest.mark.skipif(not HAVE_REDIS, reason="redis-server is not installed")
def test_a_fleet_workers_lease_state_is_the_one_in_redis(endpoints: dict[str, str], tmp_path: Path) -> None:
    import redis

    server = RedisServer()
    server.start()
    try:
        db, offices = tmp_path / "fleet.sqlite", offices_file(endpoints, tmp_path / "offices.toml")
        proc, url = start_sync(
            "--db", str(db), "--offices", str(offices), "--resources", RESOURCES, "--redis", server.url,
            "--fleet-group", "obs",
        )  # fmt: skip
        checked = False
        try:
            with redis.Redis.from_url(server.url, decode_responses=True) as r:
                deadline = time.monotonic() + 60
                while not checked:  # until a scrape shows south held (its run takes ~2 s), then compare
                    assert proc.poll() is None, "the worker ended before a scrape saw a lease held"
                    assert time.monotonic() < deadline, "no scrape saw a lease held"
                    samples = scrape(url)
                    if value(samples, "odapi_sync_lease_held", "south") != 1:
                        time.sleep(0.02)  # a scrape interval: the loop checks the outcome
                        continue
                    ((labels, one),) = samples["odapi_sync_fleet_worker"].items()
                    holder = dict(labels)["holder"]
                    # The scrape said "held": the lease in Redis names this worker (unless south just finished and
                    # gave it up between the scrape and this read: then the next scrape says so, and we look again).
                    lease = r.get("odapi:fleet:{obs}:lease:south")
                    if lease is not None:
                        assert lease.split("#")[0] == holder and one == 1
                        checked = True
            _, stderr = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=20)
        assert proc.returncode == 0, stderr
    finally:
        server.close()
