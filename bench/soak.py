"""``python -m bench.soak [--clients 50] [--seconds 60]``: overload on loopback, bounded in time and count.

Clients mix small and large exports, downloads and status calls against ``max_concurrent=5``. The run fails
(exit 1) when a request hangs past its timeout, a 5xx comes back, a 429 lacks ``Retry-After``, a 2xx export's
file has the wrong row count, RSS grows (last third vs first third of the run, above 64 MiB), or the event-loop
lag p99 reaches 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from plugins.export.check import quantile_from_buckets

from .common import MIB, PeakSampler, executor_server, tree_rss

REQUEST_TIMEOUT_S = 120.0


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    exports_checked: int = 0
    requests: int = 0


async def one_client(session: aiohttp.ClientSession, url: str, deadline: float, seed: int, tally: Tally) -> None:
    rng = random.Random(seed)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    while time.monotonic() < deadline:
        kind = rng.choices(["small", "large", "pdf", "status", "list"], [5, 1, 1, 3, 1])[0]
        try:
            if kind in {"small", "large", "pdf"}:
                count = rng.randint(10, 2000) if kind == "small" else 100_000 if kind == "large" else 2_000
                body = ({"format": "csv", "data": [{"n": i, "text": f"row {i}"} for i in range(count)]}
                        if kind == "small" else
                        {"format": "csv" if kind == "large" else "pdf", "source": "synthetic",
                         "params": {"records": count, "seed": seed}})
                async with session.post(f"{url}/export/run", json=body, timeout=timeout) as response:
                    payload = await response.json()
                    await _check_export(session, url, response, payload, count, body["format"], tally)
            elif kind == "status":
                async with session.get(f"{url}/export/status", timeout=timeout) as response:
                    tally.statuses[response.status] += 1
            else:
                async with session.get(f"{url}/export/jobs?limit=5", timeout=timeout) as response:
                    tally.statuses[response.status] += 1
                    for job in (await response.json())["jobs"]:
                        if job["download"]:
                            async with session.get(f"{url}{job['download']}", timeout=timeout) as download:
                                tally.statuses[download.status] += 1
                                await download.read()
                            break
        except TimeoutError:
            tally.problems.append(f"{kind}: no answer within {REQUEST_TIMEOUT_S:.0f} s")
        tally.requests += 1


async def _check_export(session, url, response, payload, count, fmt, tally) -> None:
    tally.statuses[response.status] += 1
    if response.status >= 500:
        tally.problems.append(f"{response.status} {payload}")
    elif response.status == 429 and not response.headers.get("Retry-After"):
        tally.problems.append("429 without Retry-After")
    elif response.status == 200:
        if payload["records"] != count:
            tally.problems.append(f"export of {count} reported {payload['records']}")
        elif fmt == "csv":
            async with session.get(f"{url}{payload['job']['download']}") as download:
                lines = (await download.read()).count(b"\r\n")
            if lines != count + 1:
                tally.problems.append(f"csv of {count} records has {lines} lines")
            tally.exports_checked += 1


def loop_lag_p99(metrics_text: str) -> float | None:
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "executor_event_loop_lag_seconds":
            buckets = {float(s.labels["le"]): s.value for s in family.samples if s.name.endswith("_bucket")}
            return quantile_from_buckets(0.99, buckets)
    return None


async def soak(url: str, pid: int, clients: int, seconds: float) -> tuple[Tally, dict[str, float]]:
    tally = Tally()
    rss: list[tuple[float, int]] = []
    started = time.monotonic()
    deadline = started + seconds

    async def sample_rss() -> None:
        while time.monotonic() < deadline:
            rss.append((time.monotonic() - started, tree_rss(pid)))
            await asyncio.sleep(0.5)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        # warm every worker up (a PDF and a big CSV each) so that RSS is compared after start-up costs
        warm = [{"format": fmt, "source": "synthetic", "params": {"records": n}}
                for fmt, n in (("pdf", 200), ("csv", 20_000)) for _ in range(5)]
        async def export(body: dict) -> None:
            async with session.post(f"{url}/export/run", json=body) as response:
                await response.read()

        await asyncio.gather(*(export(body) for body in warm))
        started = time.monotonic()
        deadline = started + seconds
        sampler = asyncio.create_task(sample_rss())
        await asyncio.gather(*(one_client(session, url, deadline, seed, tally) for seed in range(clients)))
        await sampler
        async with session.get(f"{url}/metrics") as response:
            lag = loop_lag_p99(await response.text())
    third = max(1, len(rss) // 3)
    first = sum(v for _, v in rss[:third]) / third
    last = sum(v for _, v in rss[-third:]) / third
    figures = {"requests": tally.requests, "rss_first_mib": first / MIB, "rss_last_mib": last / MIB,
               "rss_peak_mib": max(v for _, v in rss) / MIB, "loop_lag_p99_ms": (lag or 0) * 1000,
               "wall_s": time.monotonic() - started}
    if last - first > 64 * MIB:
        tally.problems.append(f"RSS grew from {first / MIB:.0f} to {last / MIB:.0f} MiB")
    if lag is None or lag >= 0.1:
        tally.problems.append(f"event-loop lag p99 {lag}")
    return tally, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    with executor_server({"max_concurrent": 5, "max_queue": 20, "queue_timeout_s": 60.0}) as server, \
            PeakSampler(server.pid):
        tally, figures = asyncio.run(soak(server.url, server.pid, args.clients, args.seconds))
    report = {"statuses": dict(sorted(tally.statuses.items())), "exports_checked": tally.exports_checked,
              **{k: round(v, 2) for k, v in figures.items()}, "problems": tally.problems[:20]}
    print(json.dumps(report, indent=2))
    return 1 if tally.problems else 0


if __name__ == "__main__":
    sys.exit(main())
