"""Sync metrics for Prometheus: ``odapi sync --metrics HOST:PORT`` serves ``/metrics`` and ``/healthz``.

Read on each scrape, nothing counted twice: rows, pages and failures from each office's live
:class:`~odapi_async.sync.OfficeProgress` (runs that ended are folded into totals, so counters only grow while
``--events`` repeats its sweeps), the last successful sync from the store (so it survives a restart), throttle
waits from the office's session. Every label is an office name (or a resource name): never a key.

``/healthz`` answers 200 while the worker can work, and 503 once its last finished run failed for every office
(a wrong developer key, the database gone): an orchestrator restarts it, or a person looks. The page is served
by a thread of its own (``http.server``), so a scrape never waits for the sync's event loop. Needs the
``metrics`` extra (prometheus-client). See ``docs/observability.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from odapi_async._exceptions import OpenDentalError
from odapi_async._syncspec import SyncSpec
from odapi_async.sync._engine import OfficeProgress
from odapi_async.sync._sink import SyncSink

if TYPE_CHECKING:
    from odapi_async.sync._fleet import FleetLeases

__all__ = ["SyncMetrics", "serve_metrics", "watch_sync"]

logger = logging.getLogger("odapi_async.sync")

#: Errors reading the store from the scrape thread (closed after the run, or busy): the last values stay.
_STORE_ERRORS = (sqlite3.Error, OpenDentalError, OSError, ValueError)


@dataclass
class _Totals:
    rows: int = 0
    pages: int = 0
    failures: int = 0


class SyncMetrics:
    """The collector behind ``/metrics`` (a prometheus-client custom collector) and the state of ``/healthz``."""

    def __init__(self, offices: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self._offices = list(dict.fromkeys(offices))
        self._totals = {name: _Totals() for name in self._offices}
        self._live: Mapping[str, OfficeProgress] = {}
        self._store: SyncSink | None = None
        self._resources: list[str] = []
        self._fleet: FleetLeases | None = None
        self._waits: dict[str, tuple[float, float]] = {}  # office: (waits, seconds), the largest seen
        self._last_success: dict[str, float] = {}  # office: UNIX time, from the store
        self._runs = 0

    def watch(
        self,
        progress: Mapping[str, OfficeProgress],
        store: SyncSink,
        specs: Sequence[SyncSpec],
        fleet: FleetLeases | None = None,
    ) -> None:
        """A run starts: read ``progress`` from now on (the previous run's counts become totals)."""
        with self._lock:
            self._fold()
            self._live = progress
            self._store = store
            self._resources = [spec.resource for spec in specs]
            self._fleet = fleet
            self._runs += 1
            for name in progress:
                if name not in self._totals:
                    self._offices.append(name)
                    self._totals[name] = _Totals()

    def _fold(self) -> None:
        for name, entry in self._live.items():
            totals = self._totals[name]
            totals.rows += entry.rows
            totals.pages += entry.pages
            totals.failures += len(entry.failures)
        self._live = {}

    # -- /healthz --------------------------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        """The status code and body of ``/healthz``."""
        with self._lock:
            live = dict(self._live)
        finished = [e for e in live.values() if e.finished is not None]
        running = sum(1 for e in live.values() if e.session is not None and e.finished is None)
        failing = sum(1 for e in finished if e.failures)
        all_failed = bool(finished) and len(finished) == len(live) and failing == len(finished)
        body = {
            "status": "failing" if all_failed else "ok",
            "offices": len(self._offices),
            "running": running,
            "failed_last_run": failing,
        }
        return (503 if all_failed else 200), body

    # -- /metrics --------------------------------------------------------------------------------------

    def collect(self) -> Iterator[Any]:
        """The metric families of one scrape (prometheus-client calls this)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self._lock:
            offices = list(self._offices)
            live = dict(self._live)
            totals = {name: _Totals(t.rows, t.pages, t.failures) for name, t in self._totals.items()}
            fleet = self._fleet
        self._read_store(offices)
        now = time.time()

        rows = CounterMetricFamily("odapi_sync_rows_written", "Rows written to the store.", labels=["office"])
        pages = CounterMetricFamily("odapi_sync_pages", "Pages written to the store.", labels=["office"])
        failures = CounterMetricFamily(
            "odapi_sync_failures", "Failed office runs and failed resources.", labels=["office"]
        )
        waits = CounterMetricFamily(
            "odapi_sync_throttle_waits",
            "Requests that waited for the office key's throttle.",
            labels=["office"],
        )
        waited = CounterMetricFamily(
            "odapi_sync_throttle_wait_seconds", "Seconds requests waited for the throttle.", labels=["office"]
        )
        last = GaugeMetricFamily(
            "odapi_sync_last_success_timestamp_seconds",
            "When every resource of the office was last synced (the stalest resource's last successful run).",
            labels=["office"],
        )
        behind = GaugeMetricFamily(
            "odapi_sync_seconds_behind",
            "Seconds since the office's stalest resource was last synced (+Inf: never synced).",
            labels=["office"],
        )
        running = GaugeMetricFamily(
            "odapi_sync_office_running", "1 while this worker syncs the office.", labels=["office"]
        )
        for name in offices:
            entry = live.get(name)
            total = totals[name]
            live_rows = entry.rows if entry else 0
            live_pages = entry.pages if entry else 0
            live_failures = len(entry.failures) if entry else 0
            rows.add_metric([name], total.rows + live_rows)
            pages.add_metric([name], total.pages + live_pages)
            failures.add_metric([name], total.failures + live_failures)
            count, seconds = self._throttle(name, entry)
            waits.add_metric([name], count)
            waited.add_metric([name], seconds)
            success = self._last_success.get(name)
            if success is not None:
                last.add_metric([name], success)
            behind.add_metric([name], max(now - success, 0.0) if success is not None else math.inf)
            is_running = entry is not None and entry.session is not None and entry.finished is None
            running.add_metric([name], 1.0 if is_running else 0.0)
        families: list[Any] = [rows, pages, failures, waits, waited, last, behind, running]
        if fleet is not None:
            held = GaugeMetricFamily(
                "odapi_sync_lease_held",
                "1 while this worker holds the office's fleet lease.",
                labels=["office"],
            )
            for name in offices:
                entry = live.get(name)
                holding = entry is not None and entry.session is not None and entry.finished is None
                held.add_metric([name], 1.0 if holding else 0.0)
            worker = GaugeMetricFamily(
                "odapi_sync_fleet_worker", "This fleet worker (its holder name).", labels=["holder"]
            )
            worker.add_metric([fleet.holder], 1.0)
            families += [held, worker]
        yield from families

    def _throttle(self, name: str, entry: OfficeProgress | None) -> tuple[float, float]:
        # The throttle's counters live per key and process, beyond a run's session: keep the largest seen.
        seen = self._waits.get(name, (0.0, 0.0))
        if entry is not None and entry.session is not None:
            stats = entry.throttle()
            seen = (max(seen[0], stats["waits"]), max(seen[1], stats["wait_time"]))
            self._waits[name] = seen
        return seen

    def _read_store(self, offices: Sequence[str]) -> None:
        store, resources = self._store, self._resources
        if store is None or not resources:
            return
        try:
            for name in offices:
                times = []
                for resource in resources:
                    state = store.state(name, resource)
                    if state is None:
                        break
                    times.append(_unix_time(state.synced_at))
                else:
                    if times:
                        self._last_success[name] = min(times)
        except _STORE_ERRORS as exc:  # closed after the run, or busy: the values read before stay
            logger.debug("metrics: the store could not be read: %s", type(exc).__name__)


def _unix_time(iso: str) -> float:
    moment = dt.datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)  # the store writes UTC
    return moment.timestamp()


# -- the endpoint -------------------------------------------------------------------------------------


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (port 0: any free port); ValueError with what is wrong."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"HOST:PORT, such as 0.0.0.0:9464; got {text!r}")
    return host.strip("[]"), int(port)


def make_server(metrics: SyncMetrics, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server for ``/metrics`` and ``/healthz`` (not started)."""
    from prometheus_client import CollectorRegistry, ProcessCollector
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    ProcessCollector(
        registry=registry
    )  # the worker's memory, CPU and open files (process_*), for its dashboard

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                status, body = metrics.health()
                self._answer(status, json.dumps(body).encode(), "application/json")
            else:
                self._answer(404, b"not found: /metrics and /healthz are served\n", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a scrape every few seconds is not worth a line on stderr

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


_ACTIVE: SyncMetrics | None = None


def serve_metrics(listen: str, offices: Sequence[str]) -> str:
    """Serve the sync's metrics on ``listen`` (``HOST:PORT``) from a daemon thread; returns the URL.

    The runs of this process report to it from now on (:func:`watch_sync`). Raises ValueError for a bad address
    or a port in use, ImportError naming the extra without prometheus-client.
    """
    global _ACTIVE
    host, port = parse_listen(listen)
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ImportError("--metrics needs prometheus-client: pip install 'odapi-async[metrics]'") from None
    metrics = SyncMetrics(offices)
    try:
        server = make_server(metrics, host, port)
    except OSError as exc:
        raise ValueError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    threading.Thread(target=server.serve_forever, name="odapi-metrics", daemon=True).start()
    _ACTIVE = metrics
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return f"http://{shown}:{bound_port}/metrics"


def watch_sync(
    progress: Mapping[str, OfficeProgress],
    store: SyncSink,
    specs: Sequence[SyncSpec],
    fleet: FleetLeases | None = None,
) -> None:
    """A run starts: report it to the metrics being served (nothing without ``--metrics``)."""
    if _ACTIVE is not None:
        _ACTIVE.watch(progress, store, specs, fleet)
