"""``POST /export/stream?format=csv``: CSV streamed back while the input (NDJSON, JSON or a source) arrives.

The response starts as soon as the first record (or, with ``columns``, the request) is in; memory holds one
batch at a time. A line that is not a JSON object ends the stream with a last line
``#error,{"code": ..., "message": ...}`` (the status is already 200 by then).
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from itertools import islice
from typing import Any

from aiohttp import web

from host import is_draining

from .csv_writer import CsvEncoder
from .limiter import QueueFull
from .payload import BadRequest, check_content_type, ndjson_lines, ndjson_record, parse_export_request, read_json_body
from .routes import MAX_LINE_BYTES, SERVICE, failure, routes
from .types import Record

BATCH = 1000
SOURCE_BATCH = 5000
STREAM_PARAMS = frozenset({"format", "columns", "title", "user"})


def error_line(code: str, message: str) -> bytes:
    """The last line of a stream that failed after it started."""
    return ("#error," + json.dumps({"code": code, "message": message}) + "\r\n").encode()


class StreamFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


async def _ndjson_batches(request: web.Request) -> AsyncIterator[list[Record]]:
    """Records as they arrive: a batch for each piece of the body (at most ``BATCH`` records)."""
    batch: list[Record] = []
    try:
        async for lines in ndjson_lines(request, MAX_LINE_BYTES):
            for number, line in lines:
                batch.append(ndjson_record(number, line))
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
            if batch:
                yield batch
                batch = []
    except BadRequest as exc:
        if batch:
            yield batch
        raise StreamFailed(exc.code, exc.message) from None


async def _iterator_batches(records: Iterator[Record], size: int) -> AsyncIterator[list[Record]]:
    """Batches of a (possibly blocking) iterator, each pulled in a thread so the event loop stays free."""
    while batch := await asyncio.to_thread(lambda: list(islice(records, size))):
        yield batch


@routes.post("/export/stream")
async def stream_export(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    if is_draining(request.app):
        return failure(503, "draining", "the server is shutting down", headers={"Retry-After": "5"})
    try:
        unknown = sorted(set(request.query) - STREAM_PARAMS)
        if unknown:
            raise BadRequest("unknown_parameter", f"unknown query parameter {unknown[0]!r} "
                                                  f"(known: {', '.join(sorted(STREAM_PARAMS))})")
        if request.query.get("format", "csv") != "csv":
            raise BadRequest("unknown_format", "only format=csv can be streamed; use /export/run for others")
        columns = [c.strip() for c in request.query.get("columns", "").split(",") if c.strip()] or None
        kind = check_content_type(request, ("application/json", "application/x-ndjson"))
        batches: AsyncIterator[list[Record]]
        if kind == "application/json":
            _, body = await read_json_body(request, service.settings.max_body_bytes)
            if isinstance(body, dict):
                body = {**body, "format": "csv", **({"columns": columns} if columns else {})}
            export = parse_export_request(body, service.formats, service.sources)
            columns = export.columns
            if export.source is not None:
                opened = await asyncio.to_thread(export.source.open, export.params)
                columns = columns or opened.columns
                batches = _iterator_batches(opened.records, SOURCE_BATCH)
            else:
                records = export.records or []
                batches = _iterator_batches(iter(records), BATCH)
            user = export.user
        else:
            batches = _ndjson_batches(request)
            user = request.query.get("user", "anonymous")
        ticket = service.admit()
    except BadRequest as exc:
        return failure(exc.status, exc.code, exc.message)
    except QueueFull as exc:
        service.metrics.rejected("csv", "queue_full")
        return failure(429, "export_queue_full", str(exc), headers={"Retry-After": str(exc.retry_after)},
                       retryAfter=exc.retry_after)
    try:
        await service.limiter.wait(ticket)
        return await _respond(request, service, batches, columns, user)
    finally:
        service.limiter.leave(ticket)


async def _respond(request: web.Request, service: Any, batches: AsyncIterator[list[Record]],
                   columns: list[str] | None, user: str) -> web.StreamResponse:
    metrics = service.metrics
    headers = {"Content-Type": "text/csv; charset=utf-8", "Content-Disposition": 'attachment; filename="export.csv"',
               "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding"}
    gzip = _accepts_gzip(request)
    if gzip:
        headers["Content-Encoding"] = "gzip"
    response = web.StreamResponse(headers=headers)
    send = _Sender(response, gzip)
    started = time.perf_counter()
    metrics.started("csv", user)
    encoder: CsvEncoder | None = CsvEncoder(columns, service.settings.neutralise_formulas) if columns else None
    await response.prepare(request)
    written = nbytes = 0
    if encoder is not None:
        nbytes += await send(encoder.header().encode())
    try:
        async for batch in batches:
            if encoder is None:
                encoder = CsvEncoder(list(batch[0].keys()), service.settings.neutralise_formulas)
                nbytes += await send(encoder.header().encode())
            nbytes += await send(encoder.encode(batch).encode())
            written += len(batch)
    except StreamFailed as exc:
        await send(error_line(exc.code, exc.message))
        metrics.failed("csv", user, exc.code, written, nbytes, time.perf_counter() - started)
        await send.close()
        return response
    await send.close()
    metrics.succeeded("csv", user, written, nbytes, time.perf_counter() - started)
    return response


def _accepts_gzip(request: web.Request) -> bool:
    for part in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, quality = part.strip().partition(";")
        if coding.strip().lower() == "gzip" and quality.replace(" ", "") not in {"q=0", "q=0.0"}:
            return True
    return False


class _Sender:
    """Writes to the response, gzipped when asked, flushing each piece so that it leaves at once."""

    def __init__(self, response: web.StreamResponse, gzip: bool) -> None:
        self.response = response
        self.compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None

    async def __call__(self, data: bytes) -> int:
        if self.compressor is not None:
            await self.response.write(self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH))
        else:
            await self.response.write(data)  # waits for the client to drain
        return len(data)

    async def close(self) -> None:
        if self.compressor is not None:
            await self.response.write(self.compressor.flush())
        await self.response.write_eof()
