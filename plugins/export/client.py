"""A small HTTP client for the command-line tools (seed, check, evidence)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

DEFAULT_URL = "http://127.0.0.1:4001"
SEED_COLUMNS = ["id", "name", "email", "amount", "status", "created_at"]
#: The batch the original seed script ran: 1k csv, 5k csv, 10k csv, 1k pdf, 5k pdf.
BATCH = (("csv", 1_000), ("csv", 5_000), ("csv", 10_000), ("pdf", 1_000), ("pdf", 5_000))


def get_text(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode("utf-8")


def get_json(url: str, timeout: float = 10.0) -> Any:
    return json.loads(get_text(url, timeout))


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def seed_records(count: int, offset: int = 0) -> list[dict[str, Any]]:
    """Records shaped like the original seed script's: id, name, email, amount, status, created_at."""
    statuses = ("active", "pending", "closed")
    return [{"id": i, "name": f"User {i}", "email": f"user{i}@example.com", "amount": round(i * 1.37 % 10_000, 2),
             "status": statuses[i % 3], "created_at": f"2026-12-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"}
            for i in range(offset, offset + count)]


@dataclass
class SeedResult:
    format: str
    records: int
    status: int
    bytes: int
    ms: float
    filename: str
    error: str

    @property
    def ok(self) -> bool:
        return self.status == 200


async def run_export(session: aiohttp.ClientSession, url: str, fmt: str, records: int, *, user: str,
                     source: str | None) -> SeedResult:
    """One ``POST /export/run``, as the original seed script sent it (inline data) or from a source."""
    body: dict[str, Any] = {"format": fmt, "title": f"Seed {fmt.upper()} {records:,} records", "user": user}
    if source:
        body.update(source=source, params={"records": records})
    else:
        body.update(data=seed_records(records), columns=SEED_COLUMNS)
    started = time.perf_counter()
    try:
        async with session.post(f"{url}/export/run", json=body) as response:
            payload = await response.json(content_type=None)
            status = response.status
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return SeedResult(fmt, records, 0, 0, elapsed, "", f"{type(exc).__name__}: {exc}")
    elapsed = float(payload.get("processingTime") or (time.perf_counter() - started) * 1000)
    if status == 200:
        result = payload["result"]
        return SeedResult(fmt, records, status, int(result["bytes"]), elapsed, result["filename"], "")
    error = payload.get("error", {})
    return SeedResult(fmt, records, status, 0, elapsed, "", f"{error.get('code')}: {error.get('message')}")


async def run_many(url: str, plan: list[tuple[str, int]], *, concurrency: int, user: str, source: str | None,
                   on_done: Callable[[SeedResult], None] | None = None) -> list[SeedResult]:
    """Run ``plan`` (format, records) with at most ``concurrency`` requests at once, results in plan order."""
    limit = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=3600)

    async with aiohttp.ClientSession(timeout=timeout) as session:
        async def one(fmt: str, records: int) -> SeedResult:
            async with limit:
                result = await run_export(session, url, fmt, records, user=user, source=source)
            if on_done:
                on_done(result)
            return result

        return list(await asyncio.gather(*(one(fmt, records) for fmt, records in plan)))
