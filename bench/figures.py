"""Each benchmark: ours and its baseline in the same run, A/B interleaved, medians."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .common import (
    MIB,
    ROOT,
    Figure,
    PeakSampler,
    executor_server,
    free_port,
    interleave,
    median,
    pinned,
    post_json,
    run_python,
    stop_process,
    tree_rss,
    wait_for_http,
)
from .load import load


@dataclass(frozen=True)
class Sizes:
    reps: int
    load_reps: int
    load_seconds: float
    csv_records: int
    pdf_records: int
    pdf_rss_records: tuple[int, ...]
    csv_rss_records: int
    busy_records: int
    scaling_records: int


QUICK = Sizes(reps=3, load_reps=8, load_seconds=2.0, csv_records=200_000, pdf_records=10_000,
              pdf_rss_records=(20_000, 60_000), csv_rss_records=200_000, busy_records=200_000, scaling_records=200_000)
TINY = Sizes(reps=1, load_reps=1, load_seconds=1.0, csv_records=2_000, pdf_records=200, pdf_rss_records=(500,),
             csv_rss_records=2_000, busy_records=2_000, scaling_records=2_000)
FULL = Sizes(reps=5, load_reps=12, load_seconds=3.0, csv_records=1_000_000, pdf_records=100_000,
             pdf_rss_records=(200_000, 1_000_000), csv_rss_records=1_000_000, busy_records=1_000_000,
             scaling_records=1_000_000)

CSV_BASELINE = """
import csv, json, os, sys, time
from plugins.export.sources import synthetic_records, SYNTHETIC_COLUMNS as C
n, path = int(sys.argv[1]), sys.argv[2]
t = time.perf_counter()
with open(path, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(C)
    for r in synthetic_records(n, 1):
        w.writerow([r[c] for c in C])
    f.flush(); os.fsync(f.fileno())
print(json.dumps({"seconds": time.perf_counter() - t}))
"""

PDF_BASELINE = """
import json, sys, time
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from plugins.export.config import default_font
from plugins.export.sources import synthetic_records, SYNTHETIC_COLUMNS as C
n, path = int(sys.argv[1]), sys.argv[2]
t = time.perf_counter()
pdfmetrics.registerFont(TTFont("Bench", default_font()))
c = canvas.Canvas(path, pagesize=A4, pageCompression=0)
width = (A4[0] - 72) / len(C)
y = 0
for i, r in enumerate(synthetic_records(n, 1)):
    if i % 50 == 0:
        if i:
            c.showPage()
        c.setFont("Bench", 7.8)
        y = A4[1] - 48
    for j, col in enumerate(C):
        c.drawString(38 + j * width, y, str(r[col]))
    y -= 12
c.save()
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def _export(url: str, fmt: str, records: int, seed: int = 1) -> float:
    started = time.perf_counter()
    status, body = post_json(f"{url}/export/run", {"format": fmt, "source": "synthetic",
                                                    "params": {"records": records, "seed": seed}})
    if status != 200 or body.get("records") != records:
        raise RuntimeError(f"export failed: {status} {body}")
    return time.perf_counter() - started


def host_overhead(sizes: Sizes) -> list[Figure]:
    """``/health`` through the host vs a bare aiohttp app: requests/s and server CPU per request; boot time
    to the first 200.

    Both servers share one CPU and are loaded at the same time, each by its own load generator on the other
    CPU: whatever else the machine is doing then slows both alike, which one-after-the-other runs on a shared
    machine cannot promise (their ratio wandered 0.85-0.95 from run to run).
    """
    port = free_port()
    bare = subprocess.Popen(pinned([sys.executable, "-m", "bench.bare_health", str(port)], 1), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bare_boot = wait_for_http(f"http://127.0.0.1:{port}/health")
    try:
        started = time.perf_counter()
        with executor_server(cpu=1) as server, concurrent.futures.ThreadPoolExecutor(2) as pool:
            ours_boot = time.perf_counter() - started

            def side_by_side(seconds: float) -> tuple[tuple[float, float], tuple[float, float]]:
                a = pool.submit(load, f"{server.url}/health", server.pid, seconds)
                b = pool.submit(load, f"http://127.0.0.1:{port}/health", bare.pid, seconds)
                return a.result(), b.result()

            side_by_side(1)  # warm both up
            pairs = [side_by_side(sizes.load_seconds) for _ in range(sizes.load_reps)]
    finally:
        stop_process(bare, 10)
    ours, base = [o for o, _ in pairs], [b for _, b in pairs]
    rate, base_rate = median([r for r, _ in ours]), median([r for r, _ in base])
    cpu, base_cpu = median([c for _, c in ours]), median([c for _, c in base])
    ratio = median([o / b for (o, _), (b, _) in pairs])
    cpu_ratio = median([b / o for (_, o), (_, b) in pairs])
    return [
        Figure("host /health throughput", rate, base_rate, "req/s", ratio, "≥ 0.90× bare aiohttp",
               ratio >= 0.9, samples={"ours": [r for r, _ in ours], "baseline": [r for r, _ in base]},
               notes="both servers on one CPU, loaded at the same time; median of the runs' ratios"),
        Figure("host /health server CPU per request", cpu, base_cpu, "µs", cpu_ratio, "reported", True,
               samples={"ours": [c for _, c in ours], "baseline": [c for _, c in base]}),
        Figure("boot to first /health 200", ours_boot * 1000, bare_boot * 1000, "ms", bare_boot / ours_boot,
               "reported", True, notes="the executor boots the export plugin and its worker processes"),
    ]


def csv_export(sizes: Sizes) -> list[Figure]:
    """1M synthetic records to CSV through /export/run vs a bare csv.writer loop over the same records."""
    n = sizes.csv_records
    with executor_server({"max_concurrent": 2}) as server, tempfile.TemporaryDirectory() as tmp:
        _export(server.url, "csv", 1000)  # warm-up
        ours, base = interleave(sizes.reps, lambda: _export(server.url, "csv", n),
                                lambda: run_python(CSV_BASELINE, str(n), f"{tmp}/bare.csv")["seconds"])
    ratio = median(base) / median(ours)
    return [Figure(f"CSV {n:,} synthetic records via /export/run", n / median(ours), n / median(base), "rec/s",
                   ratio, "≥ 0.85× bare csv.writer", ratio >= 0.85, samples={"ours_s": ours, "baseline_s": base})]


INLINE_BASELINE = """
import csv, json, os, sys, time
path, out = sys.argv[1], sys.argv[2]
raw = open(path, "rb").read()
t = time.perf_counter()
body = json.loads(raw)
columns = body["columns"]
with open(out, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(columns)
    for r in body["data"]:
        w.writerow([r.get(c) for c in columns])
    f.flush(); os.fsync(f.fileno())
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def csv_inline(sizes: Sizes) -> list[Figure]:
    """CSV of records sent inline as JSON (as the original clients do) vs JSON parse + csv.writer."""
    from plugins.export.sources import SYNTHETIC_COLUMNS, synthetic_records

    n = min(sizes.csv_records, 400_000)  # stays under max_body_bytes (64 MiB)
    body = json.dumps({"format": "csv", "columns": SYNTHETIC_COLUMNS,
                       "data": list(synthetic_records(n, 1))}).encode()
    with executor_server({"max_concurrent": 2}) as server, tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "body.json").write_bytes(body)

        def ours() -> float:
            started = time.perf_counter()
            request = urllib.request.Request(f"{server.url}/export/run", data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=3600) as response:
                assert json.loads(response.read())["records"] == n
            return time.perf_counter() - started

        ours()  # warm-up
        a, b = interleave(sizes.reps, ours, lambda: run_python(INLINE_BASELINE, f"{tmp}/body.json",
                                                             f"{tmp}/bare.csv")["seconds"])
    ratio = median(b) / median(a)
    return [Figure(f"CSV {n:,} records inline JSON via /export/run", n / median(a), n / median(b), "rec/s", ratio,
                   "≥ 0.80× JSON parse + csv.writer", ratio >= 0.8, samples={"ours_s": a, "baseline_s": b},
                   notes=f"body {len(body) / MIB:.0f} MiB")]


def pdf_export(sizes: Sizes) -> list[Figure]:
    """100k synthetic records to PDF vs a bare reportlab canvas loop with the same font."""
    n = sizes.pdf_records
    with executor_server({"max_concurrent": 2}) as server, tempfile.TemporaryDirectory() as tmp:
        _export(server.url, "pdf", 500)
        ours, base = interleave(sizes.reps, lambda: _export(server.url, "pdf", n),
                                lambda: run_python(PDF_BASELINE, str(n), f"{tmp}/bare.pdf")["seconds"])
    ratio = median(base) / median(ours)
    return [Figure(f"PDF {n:,} synthetic records via /export/run", n / median(ours), n / median(base), "rec/s",
                   ratio, "≥ 0.80× bare reportlab canvas", ratio >= 0.8, samples={"ours_s": ours, "baseline_s": base})]


def _growth(server_pid: int, run: callable) -> float:  # type: ignore[valid-type]
    idle = tree_rss(server_pid)
    with PeakSampler(server_pid) as sampler:
        run()
    return (sampler.peak - idle) / MIB


def memory(sizes: Sizes) -> list[Figure]:
    """Peak RSS growth of the server's process tree, above idle after one warm-up export."""
    figures = []
    with executor_server({"max_concurrent": 5}) as server:
        _export(server.url, "pdf", 2000)
        for n in sizes.pdf_rss_records:
            growth = _growth(server.pid, lambda n=n: _export(server.url, "pdf", n))
            figures.append(Figure(f"peak RSS growth, PDF of {n:,} records", growth, None, "MiB", None,
                                  "≤ 32 MiB", growth <= 32))
        _export(server.url, "csv", 2000)
        n = sizes.csv_rss_records

        def five() -> None:
            with concurrent.futures.ThreadPoolExecutor(5) as pool:
                list(pool.map(lambda seed: _export(server.url, "csv", n, seed), range(5)))

        growth = _growth(server.pid, five)
        figures.append(Figure(f"peak RSS growth, 5 concurrent CSV of {n:,} records", growth, None, "MiB", None,
                              "≤ 48 MiB", growth <= 48))
    return figures


def _latencies(url: str, count: int | None = None, until: list | None = None) -> list[float]:  # type: ignore[type-arg]
    """Latencies (ms) of sequential GETs: ``count`` of them, or until every future in ``until`` is done."""
    samples: list[float] = []
    while (count is not None and len(samples) < count) or (until is not None and not all(f.done() for f in until)):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def health_under_load(sizes: Sizes) -> list[Figure]:
    """``/health`` latency while five CSV exports run, against the same server idle."""
    with executor_server({"max_concurrent": 5}) as server:
        _export(server.url, "csv", 1000)
        idle = _latencies(f"{server.url}/health", count=300)
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            exports = [pool.submit(_export, server.url, "csv", sizes.busy_records, seed) for seed in range(5)]
            busy = _latencies(f"{server.url}/health", until=exports)
            for export in exports:
                export.result()
    p99 = _p(busy, 0.99)
    return [
        Figure("/health p50 during 5 exports", _p(busy, 0.5), _p(idle, 0.5), "ms", None, "reported", True),
        Figure("/health p99 during 5 exports", p99, _p(idle, 0.99), "ms", None, "< 50 ms", p99 < 50,
               notes=f"{len(busy)} samples while busy, baseline: the same server idle"),
    ]


def scaling(sizes: Sizes) -> list[Figure]:
    """Records/s of 1 and 2 concurrent CSV exports, with process workers and with thread workers."""
    n = sizes.scaling_records
    figures = []
    for kind in ("process", "thread"):
        with executor_server({"max_concurrent": 5, "workers": kind}) as server:
            _export(server.url, "csv", 1000)
            rates = {}
            for concurrency in (1, 2, 5):
                def batch(c: int = concurrency) -> float:
                    started = time.perf_counter()
                    with concurrent.futures.ThreadPoolExecutor(c) as pool:
                        list(pool.map(lambda seed: _export(server.url, "csv", n, seed), range(c)))
                    return c * n / (time.perf_counter() - started)

                rates[concurrency] = median([batch() for _ in range(max(1, sizes.reps - 2))])
        speedup = rates[2] / rates[1]
        figures.append(Figure(f"CSV throughput ×2 concurrent, {kind} workers", rates[2], rates[1], "rec/s", speedup,
                              "≥ 1.6× one export" if kind == "process" else "reported",
                              speedup >= 1.6 if kind == "process" else True,
                              notes=f"5 concurrent: {rates[5]:,.0f} rec/s"))
    return figures


SQLITE_BASELINE = """
import csv, json, os, sqlite3, sys, time
path, out = sys.argv[1], sys.argv[2]
t = time.perf_counter()
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
cursor = db.execute("SELECT * FROM trades")
with open(out, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow([d[0] for d in cursor.description])
    n = 0
    while rows := cursor.fetchmany(1000):
        w.writerows(rows)
        n += len(rows)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": n}))
"""


NDJSON_BASELINE = """
import csv, json, sys, time
path, out = sys.argv[1], sys.argv[2]
t = time.perf_counter()
with open(path, "rb") as source, open(out, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    columns, n = None, 0
    for line in source:
        r = json.loads(line)
        if columns is None:
            columns = list(r)
            w.writerow(columns)
        w.writerow([r.get(c) for c in columns])
        n += 1
print(json.dumps({"seconds": time.perf_counter() - t, "rows": n}))
"""


def _make_table(path: Path, rows: int) -> None:
    import random
    import sqlite3

    rng = random.Random(1)
    symbols = ("AAPL", "MSFT", "GOOG", "AMZN", "TSLA")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE trades (id INTEGER PRIMARY KEY, ts TEXT, symbol TEXT, qty INTEGER, price REAL)")
        db.executemany("INSERT INTO trades VALUES (?, ?, ?, ?, ?)",
                       ((i, f"2026-01-01T00:{i % 60:02d}:{i % 60:02d}Z", symbols[i % 5], rng.randint(1, 1000),
                         round(rng.random() * 1000, 2)) for i in range(1, rows + 1)))


def _stream_get(url: str, pid: int, method: str = "GET", body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[float, int, float]:
    """(seconds, bytes, peak RSS growth MiB) of one streamed response, read to the end."""
    idle = tree_rss(pid)
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with PeakSampler(pid) as sampler:
        started = time.perf_counter()
        size = 0
        with urllib.request.urlopen(request, timeout=3600) as response:
            while chunk := response.read(1 << 20):
                size += len(chunk)
        seconds = time.perf_counter() - started
    return seconds, size, (sampler.peak - idle) / MIB


def _ndjson_roundtrip(url: str, pid: int, path: Path) -> tuple[float, float]:
    """Upload an NDJSON file while reading the CSV that comes back (a streaming client must do both at once,
    or the two directions block each other); (seconds, peak RSS growth MiB of the server tree)."""
    import asyncio

    import aiohttp

    async def run() -> float:
        async def body():
            with path.open("rb") as source:
                while chunk := source.read(1 << 20):
                    yield chunk

        started = time.perf_counter()
        async with aiohttp.ClientSession() as session, session.post(
                url, data=body(), headers={"Content-Type": "application/x-ndjson"}) as response:
            async for _ in response.content.iter_chunked(1 << 20):
                pass
        return time.perf_counter() - started

    idle = tree_rss(pid)
    with PeakSampler(pid) as sampler:
        seconds = asyncio.run(run())
    return seconds, (sampler.peak - idle) / MIB


def _timed_get(url: str, method: str = "GET", body: bytes | None = None,
               headers: dict[str, str] | None = None) -> float:
    """Seconds to read a whole response, with curl when installed (a C client: the timing is the server's, not
    a Python client's), else urllib; no sampler runs meanwhile."""
    import shutil

    if shutil.which("curl"):
        command = ["curl", "-s", "-o", "/dev/null", "-X", method, "-w", "%{time_total}", url]
        for key, value in (headers or {}).items():
            command += ["-H", f"{key}: {value}"]
        if body is not None:
            command += ["--data-binary", "@-"]
        out = subprocess.run(command, input=body, capture_output=True, check=True)
        return float(out.stdout)
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=3600) as response:
        while response.read(1 << 20):
            pass
    return time.perf_counter() - started


def sqlite_stream(sizes: Sizes) -> list[Figure]:
    """A SQLite table streamed as CSV: /export/stream vs Datasette's ?_stream=on vs a bare sqlite3 loop;
    and NDJSON in, CSV out."""
    rows = sizes.csv_records
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as tmp:
        db = Path(tmp) / "bench.db"
        _make_table(db, rows)
        sources = {"trades": {"kind": "sqlite", "path": str(db), "query": "SELECT * FROM trades", "params": {}}}
        port = free_port()
        datasette = subprocess.Popen([sys.executable, "-m", "datasette", "serve", str(db), "--port", str(port),
                                      "--setting", "max_csv_mb", "0", "--setting", "sql_time_limit_ms", "600000"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/-/versions.json")
            with executor_server({"sources": sources}) as server:
                body = json.dumps({"source": "trades"}).encode()
                stream_url = f"{server.url}/export/stream"
                json_headers = {"Content-Type": "application/json"}
                _stream_get(stream_url, server.pid, "POST", body, json_headers)  # warm-up
                ours, bare, theirs = [], [], []
                datasette_url = f"http://127.0.0.1:{port}/bench/trades.csv?_stream=on&_size=max"
                for _ in range(max(1, sizes.reps - 2)):
                    ours.append(_timed_get(stream_url, "POST", body, json_headers))
                    bare.append(run_python(SQLITE_BASELINE, str(db), f"{tmp}/bare.csv")["seconds"])
                    theirs.append(_timed_get(datasette_url))
                ours_rss = [_stream_get(stream_url, server.pid, "POST", body, json_headers)[2]]
                their_rss = [_stream_get(datasette_url, datasette.pid)[2]]
                ndjson = Path(tmp) / "in.ndjson"
                with ndjson.open("w") as out:
                    for i in range(rows):
                        out.write(json.dumps({"id": i, "symbol": "AAPL", "qty": i % 1000, "price": i * 0.01}) + "\n")
                nd_ours, nd_bare = interleave(max(1, sizes.reps - 2),
                                              lambda: _ndjson_roundtrip(stream_url, server.pid, ndjson),
                                              lambda: (run_python(NDJSON_BASELINE, str(ndjson),
                                                                  f"{tmp}/nd.csv")["seconds"], 0.0))
        finally:
            stop_process(datasette, 10)
    ratio = median(bare) / median(ours)
    figures.append(Figure(f"SQLite {rows:,} rows → CSV via /export/stream", rows / median(ours), rows / median(bare),
                          "rows/s", ratio, "≥ 0.75× bare sqlite3 → csv.writer", ratio >= 0.75,
                          notes=f"Datasette ?_stream=on: {rows / median(theirs):,.0f} rows/s "
                                f"({median(theirs) / median(ours):.1f}× slower than ours)"))
    figures.append(Figure(f"SQLite {rows:,} rows, Datasette ?_stream=on", rows / median(theirs), rows / median(bare),
                          "rows/s", median(bare) / median(theirs), "reported", True))
    figures.append(Figure("peak RSS growth, /export/stream of the table", median(ours_rss), median(their_rss), "MiB",
                          None, "reported (baseline: Datasette)", True))
    nd_seconds, nd_base = median([t for t, _ in nd_ours]), median([t for t, _ in nd_bare])
    nd_growth = max(growth for _, growth in nd_ours)
    figures.append(Figure(f"{rows:,} NDJSON lines → CSV via /export/stream", rows / nd_seconds, rows / nd_base,
                          "lines/s", nd_base / nd_seconds, "reported (baseline: json.loads + csv.writer)", True,
                          notes="the client uploads and downloads at once; every line is checked (limits, "
                                "duplicate keys)"))
    figures.append(Figure(f"peak RSS growth, {rows:,} NDJSON lines in → CSV out", nd_growth, None, "MiB", None,
                          "≤ 100 MiB", nd_growth <= 100))
    return figures


ALL = [host_overhead, csv_export, csv_inline, pdf_export, memory, health_under_load, scaling, sqlite_stream]
