"""The nine export metrics, with the names and labels existing dashboards and scripts use.

| name | type | labels |
|---|---|---|
| export_requests_total | counter | format, status (started/succeeded/failed), user |
| export_latency_ms | histogram | format, size (small <1k, medium <10k, large) |
| export_bytes_total | counter | format, status (success/error) |
| export_concurrent_running | gauge | — |
| export_queue_depth | gauge | — |
| export_fail_total | counter | reason, format |
| export_memory_bytes | gauge | format |
| export_throughput_ops_per_sec | gauge | format |
| export_success_rate | gauge | format |
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS_MS = (50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000,
                      600_000)
OTHER_USER = "other"
METRIC_NAMES = (
    "export_requests_total",
    "export_latency_ms",
    "export_bytes_total",
    "export_concurrent_running",
    "export_queue_depth",
    "export_fail_total",
    "export_memory_bytes",
    "export_throughput_ops_per_sec",
    "export_success_rate",
)


def size_class(records: int) -> str:
    return "small" if records < 1_000 else "medium" if records < 10_000 else "large"


def _rss_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def process_tree_rss(pids: list[int]) -> int:
    """Resident memory of this process and the given worker processes, in bytes."""
    return _rss_of(os.getpid()) + sum(_rss_of(pid) for pid in pids)


class ExportMetrics:
    """The nine metrics on one app's registry, and the bookkeeping behind the honest ones."""

    def __init__(self, registry: CollectorRegistry, *, max_user_labels: int, success_window: int) -> None:
        self.requests = Counter("export_requests_total", "Exports by format, status (started/succeeded/failed) "
                                "and user (capped; the rest count as 'other')", ["format", "status", "user"],
                                registry=registry)
        self.latency = Histogram("export_latency_ms", "Wall time of an export from start to file, ms",
                                 ["format", "size"], buckets=LATENCY_BUCKETS_MS, registry=registry)
        self.bytes = Counter("export_bytes_total", "Bytes written to export files (status success/error)",
                             ["format", "status"], registry=registry)
        self.running = Gauge("export_concurrent_running", "Exports running now", registry=registry)
        self.queue_depth = Gauge("export_queue_depth", "Exports waiting for a slot now", registry=registry)
        self.failures = Counter("export_fail_total", "Export failures by reason", ["reason", "format"],
                                registry=registry)
        self.memory = Gauge("export_memory_bytes", "Resident memory of the server and its export workers, "
                            "sampled while exporting", ["format"], registry=registry)
        self.throughput = Gauge("export_throughput_ops_per_sec", "Records per second of the latest export",
                                ["format"], registry=registry)
        self.success_rate = Gauge("export_success_rate", "Succeeded / finished over the last exports",
                                  ["format"], registry=registry)
        self.max_user_labels = max_user_labels
        self._users: set[str] = set()
        self._outcomes: dict[str, deque[bool]] = {}
        self._window = success_window

    def bind(self, running: Callable[[], int], queued: Callable[[], int]) -> None:
        """Read the gauges of running and queued exports live from the limiter."""
        self.running.set_function(running)
        self.queue_depth.set_function(queued)

    def user_label(self, user: str) -> str:
        if user in self._users:
            return user
        if len(self._users) < self.max_user_labels:
            self._users.add(user)
            return user
        return OTHER_USER

    def started(self, fmt: str, user: str) -> None:
        self.requests.labels(fmt, "started", self.user_label(user)).inc()

    def succeeded(self, fmt: str, user: str, records: int, nbytes: int, seconds: float) -> None:
        self.requests.labels(fmt, "succeeded", self.user_label(user)).inc()
        self.latency.labels(fmt, size_class(records)).observe(seconds * 1000)
        self.bytes.labels(fmt, "success").inc(nbytes)
        self.throughput.labels(fmt).set(records / seconds if seconds > 0 else 0.0)
        self._finish(fmt, True)

    def failed(self, fmt: str, user: str, reason: str, records: int, nbytes: int, seconds: float) -> None:
        self.requests.labels(fmt, "failed", self.user_label(user)).inc()
        self.latency.labels(fmt, size_class(records)).observe(seconds * 1000)
        self.failures.labels(reason, fmt).inc()
        if nbytes:
            self.bytes.labels(fmt, "error").inc(nbytes)
        self._finish(fmt, False)

    def rejected(self, fmt: str, reason: str) -> None:
        """An export that never started (queue full, cancelled while queued): a failure by reason only."""
        self.failures.labels(reason, fmt).inc()

    def sample_memory(self, fmt: str, worker_pids: list[int]) -> None:
        self.memory.labels(fmt).set(process_tree_rss(worker_pids))

    def _finish(self, fmt: str, ok: bool) -> None:
        window = self._outcomes.setdefault(fmt, deque(maxlen=self._window))
        window.append(ok)
        self.success_rate.labels(fmt).set(sum(window) / len(window))

