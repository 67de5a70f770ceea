"""``python -m plugins.export.seed``: POST exports to a running executor, with a progress bar and a summary.

    python -m plugins.export.seed --records 10000 --format csv
    python -m plugins.export.seed --batch            # 1k csv, 5k csv, 10k csv, 1k pdf, 5k pdf

Exits 1 when any export fails.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .client import BATCH, DEFAULT_URL, SeedResult, run_many


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m plugins.export.seed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the executor (default {DEFAULT_URL})")
    parser.add_argument("--records", type=int, default=1000, help="records per export (default 1000)")
    parser.add_argument("--format", default="csv", help="csv or pdf (default csv)")
    parser.add_argument("--batch", action="store_true", help="run the batch: 1k csv, 5k csv, 10k csv, 1k pdf, 5k pdf")
    parser.add_argument("--count", type=int, default=1, help="how many exports (default 1; not with --batch)")
    parser.add_argument("--concurrency", type=int, default=1, help="exports in flight at once (default 1)")
    parser.add_argument("--source", help="send a data source name (e.g. synthetic) instead of inline data")
    parser.add_argument("--user", default="seed-script", help="the user label (default seed-script)")
    return parser


def summary(results: list[SeedResult]) -> Table:
    table = Table(title="Export seed")
    for column in ("format", "records", "status", "bytes", "ms", "file or error"):
        table.add_column(column, justify="right" if column in {"records", "bytes", "ms", "status"} else "left")
    for r in results:
        table.add_row(r.format, f"{r.records:,}", "✅ 200" if r.ok else f"❌ {r.status or 'no answer'}",
                      f"{r.bytes:,}", f"{r.ms:,.0f}", r.filename or r.error)
    return table


def seed(url: str, plan: list[tuple[str, int]], *, concurrency: int, user: str, source: str | None,
         console: Console) -> list[SeedResult]:
    with Progress(TextColumn("[bold]seeding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("exports", total=len(plan))
        results = asyncio.run(run_many(url, plan, concurrency=concurrency, user=user, source=source,
                                       on_done=lambda _: progress.advance(task)))
    console.print(summary(results))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.records < 0 or args.concurrency < 1 or args.count < 1:
        print("--records must be >= 0, --concurrency and --count >= 1", file=sys.stderr)
        return 2
    plan = list(BATCH) if args.batch else [(args.format, args.records)] * args.count
    results = seed(args.url.rstrip("/"), plan, concurrency=args.concurrency, user=args.user, source=args.source,
                   console=Console())
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
