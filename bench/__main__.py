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
  instrumentation and metrics on) against a bare aiohttp app answering the same JSON, both single processes
  on the same CPU and loaded at the same time, each from its own load generator on the other CPU
  (`wrk -t1 -c32` when installed, else an aiohttp client loop); the ratio is the median of the runs' ratios.
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
- **CSV inline JSON**: `POST /export/run` with the records in the body (as the original clients send them)
  against a fresh interpreter that parses the same body with `json.loads` and writes it with `csv.writer`.
- **NDJSON in → CSV out**: lines/s and peak RSS growth of the server while a client uploads NDJSON and reads
  the CSV at once, against `json.loads` per line + `csv.writer` in a fresh interpreter.

## Scaling curves

`python -m bench.curves` (CSV 1k … 10M records, PDF 1k … 1M, 1 … 5 concurrent CSV exports) draws these and
keeps its figures in `bench/results/curves.json`: time grows linearly with the records, peak memory does not.

![CSV: seconds and peak RSS growth by records](scaling-csv.png)
![PDF: seconds and peak RSS growth by records](scaling-pdf.png)
![Throughput by concurrent exports](scaling-concurrency.png)

## What the profiles showed

- **/health** (callgrind, 2,000 requests after warm-up, user-space instructions): 274.5k per request through
  the host against 264.4k bare (+3.8%): the instrumentation wrapper, the metrics update and the handler's
  closure. Binding each route's resource when it is added (instead of reading `request.match_info` per
  request) and a `/health` that reads no state through the request took the wrapper from ~1 µs to ~0.7 µs
  in process. Measured one server after the other the ratio wandered 0.85–0.95 with the machine's load;
  loaded side by side on one CPU it is steadier (0.92–0.93 in full runs). The rest of the gap in CPU time
  (kernel, caches) does not show in the instruction count.
- **SQLite → CSV stream**: a py-spy profile showed `writerows` 43% and `fetchmany` 35% (the bare loop's own
  work), then the per-row generator and `islice` that turned cursor batches into rows and back (~20%) and
  the per-column formula/type checks (~10%). Batches now go from `fetchmany` to the encoder as they are,
  and a source's stream is read and encoded on the slot's worker process while the server only sends, reading
  the next chunk from the worker while the current one goes to the client (without that read-ahead the
  worker stalled on a full pipe whenever the client was slow, 0.77×): one stream keeps both cores busy
  (1M rows: 0.66× before, 0.86–0.95× after).
- **CSV inline JSON**: the body must be checked strictly before it is accepted (duplicate keys and NaN
  refused through a Python `object_pairs_hook` per object: 0.29 s for 200k records against 0.21 s plain;
  every record against the limits: 0.15 s record by record, 0.12 s in C-level passes over all of them), then
  spooled, parsed again by the worker and written (0.32 s, as fast as the bare loop). One after the other
  that was 0.48×. Now a big body that opens with `"format": "csv"` is spooled and rendered on its worker at
  once (orjson: 0.15 s instead of 0.21 s) while the server checks it; the job is stored only when the body
  passes, and a body that fails takes its render, file and spool with it (the client gets the same 400).
  The rows are made into text a chunk at a time instead of through a text wrapper whose every write asked
  the hashing writer whether it was closed (200k property calls). Result: 0.75–0.87× on 200k records and
  0.79–0.81× on 400k (noisy: two processes on two CPUs that are busy with other work too). What is left is
  the CPU both sides need at once on two cores.
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
