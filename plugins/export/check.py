"""``python -m plugins.export.check``: the six assertions on a running executor's export metrics.

1. all nine export metrics are present;
2. latency p95 < 10 s, interpolated from the ``export_latency_ms`` histogram buckets;
3. success rate >= 95%, from the ``export_requests_total`` counters (succeeded / (succeeded + failed));
4. ``export_concurrent_running`` <= the server's ``max_concurrent``;
5. ``export_queue_depth`` <= 100;
6. ``export_bytes_total{status="success"}`` > 0.

Prints ✅/❌ per assertion; exits 1 when any fails.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from .client import DEFAULT_URL, get_json, get_text
from .metrics import METRIC_NAMES

P95_LIMIT_MS = 10_000.0
SUCCESS_MIN = 0.95
QUEUE_MAX = 100


@dataclass
class Assertion:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'✅' if self.ok else '❌'} {self.name}: {self.detail}"


Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> tuple[set[str], Samples]:
    """Family names declared in the exposition, and every sample by name."""
    declared: set[str] = set()
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        declared.add(family.name)
        if family.type == "counter":
            declared.add(family.name + "_total")
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return declared, samples


def quantile_from_buckets(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated linearly inside its bucket (as PromQL does)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # in the +Inf bucket: the highest finite bound, as histogram_quantile does
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return bounds[-1]


def _sum(samples: Samples, name: str, **match: str) -> float:
    return sum(value for labels, value in samples.get(name, []) if all(labels.get(k) == v for k, v in match.items()))


def run_checks(metrics_text: str, max_concurrent: int) -> list[Assertion]:
    declared, samples = parse(metrics_text)
    missing = [name for name in METRIC_NAMES if name not in declared and name not in samples]
    checks = [Assertion("all nine export metrics present", not missing,
                        "all present" if not missing else f"missing {', '.join(missing)}")]
    buckets: dict[float, float] = defaultdict(float)
    for labels, value in samples.get("export_latency_ms_bucket", []):
        buckets[float(labels["le"])] += value
    p95 = quantile_from_buckets(0.95, dict(buckets))
    checks.append(Assertion("latency p95 < 10 s", p95 is not None and p95 < P95_LIMIT_MS,
                            "no export observed yet" if p95 is None else f"p95 = {p95:,.0f} ms"))
    succeeded = _sum(samples, "export_requests_total", status="succeeded")
    failed = _sum(samples, "export_requests_total", status="failed")
    finished = succeeded + failed
    rate = succeeded / finished if finished else None
    checks.append(Assertion("success rate >= 95%", rate is not None and rate >= SUCCESS_MIN,
                            "no finished export yet" if rate is None else
                            f"{rate:.1%} ({succeeded:.0f} succeeded, {failed:.0f} failed)"))
    running = _sum(samples, "export_concurrent_running")
    checks.append(Assertion("running <= max_concurrent", running <= max_concurrent,
                            f"{running:.0f} running, max {max_concurrent}"))
    queued = _sum(samples, "export_queue_depth")
    checks.append(Assertion("queue depth <= 100", queued <= QUEUE_MAX, f"{queued:.0f} queued"))
    written = _sum(samples, "export_bytes_total", status="success")
    checks.append(Assertion("bytes written > 0", written > 0, f"{written:,.0f} bytes"))
    return checks


def check(url: str) -> list[Assertion]:
    status = get_json(f"{url}/export/status")
    return run_checks(get_text(f"{url}/export/metrics"), int(status["maxConcurrentExports"]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugins.export.check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the executor (default {DEFAULT_URL})")
    args = parser.parse_args(argv)
    try:
        results = check(args.url.rstrip("/"))
    except OSError as exc:
        print(f"❌ cannot read {args.url}: {exc}")
        return 1
    for result in results:
        print(result.line())
    passed = sum(r.ok for r in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
