"""``examples/celery_sync.py`` in a real Celery worker process: one task per office into one PostgreSQL database."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli.clitools import ROOT, _env, local_rows, odapi
from pg_support import pg_rows
from redis_support import NEEDS_REDIS

pytestmark = [
    *NEEDS_REDIS,
    pytest.mark.slow("a Celery worker process and three offices' syncs (13 s under load)"),
]
celery = pytest.importorskip("celery", reason="celery is not installed (pip install -e '.[test]')")

RESOURCES = ["appointments", "patients", "procedurelogs", "commlogs"]
OFFICES = ["north", "south", "east"]


def test_one_task_per_office_fills_one_database(emulator, pg_cluster, pg_db, redis_server, tmp_path) -> None:
    offices = tmp_path / "offices.toml"
    offices.write_text(
        'developer_key = "dev-cli"\n[defaults]\n'
        f'endpoints = {{ remote = "{emulator.endpoints["remote"]}" }}\nmodes = ["remote"]\n'
        'tier = "full"\nintervals = { full = 0.02 }\n'
        + "".join(f'\n[offices.{name}]\ncustomer_key = "k-fleet"\n' for name in OFFICES),
        encoding="utf-8",
    )
    env = {
        **_env(),
        "CELERY_BROKER_URL": redis_server.url.replace("/0", "/1"),
        "ODAPI_REDIS_URL": redis_server.url,
        "ODAPI_SYNC_DB": pg_cluster.url(pg_db),
        "ODAPI_OFFICES": str(offices),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "examples.celery_sync", "worker", "--concurrency", "2",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        # Queue the round from another process, as cron or Celery beat would, and wait for every office's task.
        queue = (
            "from celery.result import GroupResult\n"
            "from examples.celery_sync import app, sync_all\n"
            f"group_id = sync_all.delay({RESOURCES!r}).get(timeout=120)\n"
            "results = GroupResult.restore(group_id, app=app).get(timeout=180)\n"
            "print(sorted((r['office'], r['ok'], r['rows'] > 0) for r in results))\n"
        )
        queued = subprocess.run(
            [sys.executable, "-c", queue], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
        )
        assert queued.returncode == 0, queued.stderr[-3000:]
        assert queued.stdout.strip() == str(sorted((name, True, True) for name in OFFICES))
    finally:
        worker.terminate()  # warm shutdown: finishes the task in hand (there is none left)
        try:
            log, _ = worker.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            log, _ = worker.communicate(timeout=10)
    assert "Traceback" not in log, log[-3000:]
    # Every office holds what a lone SQLite sync of it holds.
    lone = tmp_path / "lone.sqlite"
    run = odapi(
        "sync", "--offices", str(offices), "--db", str(lone), "--resources", ",".join(RESOURCES), "--quiet"
    )
    assert run.returncode == 0, run.stderr
    for office in OFFICES:
        for resource in RESOURCES:
            want = local_rows(lone, resource, office)
            assert want and pg_rows(pg_cluster, pg_db, resource, office) == want, (office, resource)
    # The throttle was Redis's: the worker's sessions kept their per-key state there.
    import redis

    with redis.Redis.from_url(redis_server.url) as r:
        assert any(b"odapi" in key for key in r.keys("*")), "the tasks did not use the shared RedisThrottle"
    from odapi_async.emulator import Emulator

    remote = emulator.stats()["keys"][Emulator.key_id("k-fleet")]["listeners"]["remote"]
    assert (
        remote["requests"] > 0 and remote["violations"] == 0
    )  # two worker processes, one key: never too fast
