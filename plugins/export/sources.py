"""The built-in ``synthetic`` data source: deterministic trade-like records from a seed, made lazily."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Mapping
from typing import Any

from .types import DataSource, Record, SourceRecords

SYNTHETIC_COLUMNS = ["id", "timestamp", "symbol", "side", "qty", "price", "pnl", "status"]
MAX_SYNTHETIC_RECORDS = 10_000_000
SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA", "META", "BTC-USD", "ETH-USD", "EURUSD")
STATUSES = ("filled", "filled", "filled", "partial", "cancelled")
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def check_synthetic_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``records`` (0..10,000,000, default 1000) and ``seed`` (an integer, default 1); nothing else."""
    unknown = sorted(set(params) - {"records", "seed"})
    if unknown:
        raise ValueError(f"unknown param {unknown[0]!r} for source 'synthetic' (known: records, seed)")
    records = params.get("records", 1000)
    seed = params.get("seed", 1)
    if type(records) is not int or not 0 <= records <= MAX_SYNTHETIC_RECORDS:
        raise ValueError(f"'records' must be an integer 0..{MAX_SYNTHETIC_RECORDS}, got {records!r}")
    if type(seed) is not int:
        raise ValueError(f"'seed' must be an integer, got {seed!r}")
    return {"records": records, "seed": seed}


def synthetic_records(records: int, seed: int) -> Iterator[Record]:
    """``records`` records; the same seed always gives the same records."""
    rng = random.Random(seed)
    rand, choice = rng.random, rng.choice
    base = EPOCH + dt.timedelta(seconds=seed % 86_400)
    second = dt.timedelta(seconds=1)
    stamp = base
    for index in range(1, records + 1):
        qty = int(rand() * 1000) + 1
        price = round(10 + rand() * 990, 2)
        yield {
            "id": index,
            "timestamp": stamp.isoformat(),
            "symbol": choice(SYMBOLS),
            "side": "buy" if rand() < 0.5 else "sell",
            "qty": qty,
            "price": price,
            "pnl": round((rand() - 0.5) * price * qty / 50, 2),
            "status": choice(STATUSES),
        }
        stamp += second


def open_synthetic(params: Mapping[str, Any]) -> SourceRecords:
    checked = check_synthetic_params(params)
    return SourceRecords(list(SYNTHETIC_COLUMNS), synthetic_records(**checked), checked["records"])


SYNTHETIC = DataSource(
    name="synthetic",
    check_params=check_synthetic_params,
    open=open_synthetic,
    description="deterministic trade records: params records (0..10M), seed",
)
