"""``python -m bench [--quick] [--only NAME ...]``: every benchmark with its baseline, one table.

Writes ``bench/results/latest.json`` and ``docs/performance.md``. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import ROOT, write_report
from .figures import ALL, FULL, QUICK, TINY

NOTES = """## How to read it

- **host /health throughput**: requests/s of `GET /health` through the executor (export plugin loaded, host
  middleware and metrics on) against a bare aiohttp app answering the same JSON, both single processes,
  loaded from a second process (`wrk -t1 -c32` when installed, else an aiohttp client loop).
- **CSV / PDF via /export/run**: wall time of `POST /export/run` with the `synthetic` source, seen by the
  client, against a fresh interpreter that makes the same records and writes them with a bare `csv.writer`
  loop (fsynced) or a bare reportlab canvas loop (`drawString` per cell, same font, 50 rows a page).
- **peak RSS growth**: the server's whole process tree (server and export workers), sampled every 20 ms,
  above its idle level after one warm-up export.
- **/health during 5 exports**: sequential `GET /health` from the benchmark process while five synthetic CSV
  exports run; the baseline column is the same server idle.
- **throughput ×2**: records/s of two concurrent CSV exports against one, for each worker kind
  (`[plugins.export] workers`).
- **SQLite → CSV via /export/stream**: a table streamed by a named SQLite source, against a bare
  `sqlite3` → `csv.writer` loop (`fetchmany`) and Datasette's `?_stream=on` CSV of the same table.
- **NDJSON in → CSV out**: peak RSS growth of the server while a client uploads NDJSON and reads the CSV at once.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes; under two minutes")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: proves the command works, measures nothing")
    parser.add_argument("--out", help="write the JSON and Markdown here instead of bench/results and docs/")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks: " + ", ".join(f.__name__ for f in ALL))
    args = parser.parse_args(argv)
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    selected = [f for f in ALL if not args.only or f.__name__ in args.only]
    figures = []
    started = time.perf_counter()
    for bench in selected:
        print(f"… {bench.__name__}", file=sys.stderr, flush=True)
        figures.extend(bench(sizes))
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    out = Path(args.out) if args.out else None
    write_report(figures, mode, (out or ROOT / "bench" / "results") / f"{mode}.json",
                 (out or ROOT / "docs") / "performance.md", NOTES)
    width = max(len(f.name) for f in figures)
    print(f"{'figure':<{width}}  {'ours':>14}  {'baseline':>14}  {'ratio':>6}  target")
    for f in figures:
        base = f"{f.baseline:,.1f}" if f.baseline is not None else "—"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "—"
        print(f"{f.name:<{width}}  {f.ours:>10,.1f} {f.unit:<3}  {base:>14}  {ratio:>6}  {f.target} "
              f"{'✅' if f.passed else '❌'}")
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0 if all(f.passed for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
