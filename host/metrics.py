"""The host's own metrics: HTTP requests by route template, request latency, plugin status and boot time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
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


class HostMetrics:
    """Request metrics; labelled children are cached so the hot path does one dict look-up."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "executor_http_requests_total", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=registry,
        )
        self.latency = Histogram(
            "executor_http_request_duration_seconds", "HTTP request latency by route template and method",
            ["route", "method"], registry=registry, buckets=LATENCY_BUCKETS,
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
        children[0].inc()
        children[1].observe(seconds)
