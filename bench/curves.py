"""``python -m bench.curves [--quick]``: scaling curves as PNG plots in ``docs/``.

Records against seconds and peak RSS growth (CSV 1k … 10M, PDF 1k … 1M; ``--quick`` stops at 1M and 100k),
and concurrent exports against throughput. Memory should be flat in the record count and time linear; the run
prints both and writes ``bench/results/curves.json``. Needs matplotlib (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import time
from pathlib import Path

from .common import MIB, ROOT, PeakSampler, executor_server, tree_rss
from .figures import _export

CSV_SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
PDF_SIZES = (1_000, 10_000, 100_000, 1_000_000)


def records_curve(url: str, pid: int, fmt: str, sizes: tuple[int, ...]) -> list[dict[str, float]]:
    points = []
    for n in sizes:
        idle = tree_rss(pid)
        with PeakSampler(pid) as sampler:
            seconds = _export(url, fmt, n)
        points.append({"records": n, "seconds": seconds, "peak_rss_growth_mib": (sampler.peak - idle) / MIB,
                       "records_per_s": n / seconds})
        print(f"{fmt} {n:>10,}: {seconds:7.2f} s, +{points[-1]['peak_rss_growth_mib']:5.1f} MiB", file=sys.stderr)
    return points


def concurrency_curve(url: str, records: int) -> list[dict[str, float]]:
    points = []
    for concurrency in (1, 2, 3, 4, 5):
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda seed: _export(url, "csv", records, seed), range(concurrency)))
        rate = concurrency * records / (time.perf_counter() - started)
        points.append({"concurrency": concurrency, "records_per_s": rate})
        print(f"csv ×{concurrency}: {rate:,.0f} records/s", file=sys.stderr)
    return points


def plot(results: dict[str, list[dict[str, float]]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for fmt in ("csv", "pdf"):
        points = results[fmt]
        figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        xs = [p["records"] for p in points]
        left.loglog(xs, [p["seconds"] for p in points], "o-")
        left.set(xlabel="records", ylabel="seconds", title=f"{fmt.upper()}: time (linear is a slope of 1)")
        right.semilogx(xs, [p["peak_rss_growth_mib"] for p in points], "o-")
        right.set(xlabel="records", ylabel="peak RSS growth (MiB)", title=f"{fmt.upper()}: memory (flat)",
                  ylim=(0, max(64, max(p["peak_rss_growth_mib"] for p in points) * 1.2)))
        figure.tight_layout()
        path = out / f"scaling-{fmt}.png"
        figure.savefig(path, dpi=90)
        plt.close(figure)
        written.append(path)
    figure, axis = plt.subplots(figsize=(5, 4))
    points = results["concurrency"]
    axis.plot([p["concurrency"] for p in points], [p["records_per_s"] for p in points], "o-")
    axis.set(xlabel="concurrent CSV exports", ylabel="records/s (all exports)", title="Concurrency", ylim=(0, None))
    figure.tight_layout()
    path = out / "scaling-concurrency.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return [*written, path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.curves", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CSV up to 1M, PDF up to 100k")
    parser.add_argument("--tiny", action="store_true", help="a few hundred records: proves the command works")
    parser.add_argument("--out", default=str(ROOT / "docs"),
                        help="where the PNGs go (default docs/; with --tiny the JSON goes there too)")
    args = parser.parse_args(argv)
    csv_sizes = CSV_SIZES[:-1] if args.quick else CSV_SIZES
    pdf_sizes = PDF_SIZES[:-1] if args.quick else PDF_SIZES
    concurrent_records = 200_000 if args.quick else 1_000_000
    if args.tiny:
        csv_sizes, pdf_sizes, concurrent_records = (100, 1_000), (100, 500), 1_000
    with executor_server({"max_concurrent": 5}) as server:
        _export(server.url, "pdf", 1000)  # warm-up
        _export(server.url, "csv", 1000)
        results = {"csv": records_curve(server.url, server.pid, "csv", csv_sizes),
                   "pdf": records_curve(server.url, server.pid, "pdf", pdf_sizes),
                   "concurrency": concurrency_curve(server.url, concurrent_records)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in plot(results, out):
        print(f"wrote {path}")
    report = out / "curves.json" if args.tiny else ROOT / "bench" / "results" / "curves.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
