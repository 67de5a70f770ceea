"""The host's own metrics: HTTP requests by route template, request latency, plugin status and boot time."""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .lifecycle import PluginHost

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class PluginStatusCollector(Collector):
    """``executor_plugin_status`` (1 per plugin, on its current status) and ``executor_plugin_boot_seconds``."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host

    def collect(self) -> Iterable[GaugeMetricFamily]:
        status = GaugeMetricFamily(
            "executor_plugin_status", "Plugins by status (1 on the current status)", labels=["plugin", "status"]
        )
        boot = GaugeMetricFamily("executor_plugin_boot_seconds", "Time each plugin took to boot", labels=["plugin"])
        for rec in self.host.records.values():
            status.add_metric([rec.name, rec.status], 1.0)
            boot.add_metric([rec.name], rec.boot_ms / 1000)
        yield status
        yield boot


class HostMetrics(Collector):
    """HTTP request metrics, kept as plain numbers on the hot path and turned into families at scrape time.

    Every request is counted from the event loop's thread, so no locks are needed; a scrape reads a
    consistent-enough snapshot (the same guarantee prometheus_client's own metrics give).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        # keyed by the route's resource (None when no route matched); its template is read at scrape time
        self._requests: dict[tuple[Any, str, int], int] = {}
        self._latency: dict[tuple[Any, str], list[float]] = {}  # bucket counts..., then sum
        self.unmatched: Any = None  # the catch-all resource: its requests are labelled "unmatched"
        registry.register(self)

    def _template(self, resource: Any) -> str:
        return "unmatched" if resource is None or resource is self.unmatched else str(resource.canonical)

    def observe(self, resource: Any, method: str, status: int, seconds: float) -> None:
        """Count one request; ``resource`` is the resource of the route that answered it."""
        key = (resource, method, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        series = self._latency.get((resource, method))
        if series is None:
            series = self._latency[(resource, method)] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        series[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        series[-1] += seconds

    def collect(self) -> Iterable[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily("executor_http_requests", "HTTP requests by route template, method and status",
                                       labels=["route", "method", "status"])
        for (resource, method, status), count in list(self._requests.items()):
            requests.add_metric([self._template(resource), method, str(status)], count)
        latency = HistogramMetricFamily("executor_http_request_duration_seconds",
                                        "HTTP request latency by route template and method",
                                        labels=["route", "method"])
        for (resource, method), series in list(self._latency.items()):
            running, buckets = 0.0, []
            for bound, in_bucket in zip((*map(str, LATENCY_BUCKETS), "+Inf"), series[:-1], strict=True):
                running += in_bucket
                buckets.append((bound, running))
            latency.add_metric([self._template(resource), method], buckets, series[-1])
        yield requests
        yield latency


LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class LoopLag(Collector):
    """``executor_event_loop_lag_seconds``: how late the event loop wakes a 100 ms timer (a blocked loop shows)."""

    every = 0.1

    def __init__(self, registry: CollectorRegistry) -> None:
        self._buckets = [0] * (len(LAG_BUCKETS) + 1)
        self._sum = 0.0
        registry.register(self)

    def observe(self, lag: float) -> None:
        self._buckets[bisect_left(LAG_BUCKETS, lag)] += 1
        self._sum += lag

    async def run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.every)
            self.observe(max(0.0, time.perf_counter() - before - self.every))

    def collect(self) -> Iterable[HistogramMetricFamily]:
        family = HistogramMetricFamily("executor_event_loop_lag_seconds",
                                       "How late the event loop runs a 100 ms timer")
        running, buckets = 0.0, []
        for bound, count in zip((*map(str, LAG_BUCKETS), "+Inf"), self._buckets, strict=True):
            running += count
            buckets.append((bound, running))
        family.add_metric([], buckets, self._sum)
        yield family
