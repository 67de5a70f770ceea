"""``POST /export/stream?format=csv``: CSV streamed back while the input (NDJSON, JSON or a source) arrives.

The response starts as soon as the first record (or, with ``columns``, the request) is in; memory holds one
batch at a time. A line that is not a JSON object ends the stream with a last line
``#error,{"code": ..., "message": ...}`` (the status is already 200 by then).
"""

from __future__ import annotations

import contextlib
import json
import time
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

from aiohttp import web

from host import identity, is_draining

from .csv_writer import CsvEncoder
from .limiter import QueueFull
from .payload import (
    BadRequest,
    Limits,
    check_content_type,
    ndjson_lines,
    ndjson_record,
    parse_export_request,
    read_json_body,
)
from .render import RenderFailed, StreamTask, csv_chunks
from .routes import CLIENT_ERRORS, MAX_LINE_BYTES, SERVICE, failure, routes
from .types import Record
from .workers import Chunks, in_thread

BATCH = 1000
SOURCE_BATCH = 20000
STREAM_PARAMS = frozenset({"format", "columns", "title", "user"})


def error_line(code: str, message: str) -> bytes:
    """The last line of a stream that failed after it started."""
    return ("#error," + json.dumps({"code": code, "message": message}) + "\r\n").encode()


class StreamFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


async def _ndjson_batches(request: web.Request, limits: Limits) -> AsyncIterator[list[Record]]:
    """Records as they arrive: a batch for each piece of the body (at most ``BATCH`` records)."""
    batch: list[Record] = []
    try:
        async for lines in ndjson_lines(request, MAX_LINE_BYTES):
            for number, line in lines:
                batch.append(ndjson_record(number, line, limits))
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


class Counter:
    """Records sent so far (for the metrics)."""

    records = 0


async def _counted(chunks: Chunks, counter: Counter) -> AsyncGenerator[bytes, None]:
    try:
        async with contextlib.aclosing(chunks):
            async for records, data in chunks:
                counter.records += records
                yield data
    except RenderFailed as exc:  # the source failed after the stream began
        raise StreamFailed(exc.reason, exc.message) from None


async def _ndjson_texts(batches: AsyncIterator[list[Record]], columns: list[str] | None, neutralise: bool,
                        counter: Counter) -> AsyncGenerator[bytes, None]:
    """CSV text of NDJSON records as they arrive; the header goes out with the request when columns are given."""
    encoder = CsvEncoder(columns, neutralise) if columns else None
    if encoder is not None:
        yield encoder.header().encode()
    async for batch in batches:
        if encoder is None:
            encoder = CsvEncoder(list(batch[0].keys()), neutralise)
            yield encoder.header().encode()
        counter.records += len(batch)
        yield encoder.encode(batch).encode()


@routes.post("/export/stream")
async def stream_export(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    if is_draining(request.app):
        return failure(503, "draining", "the server is shutting down", headers={"Retry-After": "5"})
    neutralise = service.settings.neutralise_formulas
    counter = Counter()
    try:
        unknown = sorted(set(request.query) - STREAM_PARAMS)
        if unknown:
            raise BadRequest("unknown_parameter", f"unknown query parameter {unknown[0]!r} "
                                                  f"(known: {', '.join(sorted(STREAM_PARAMS))})")
        if request.query.get("format", "csv") != "csv":
            raise BadRequest("unknown_format", "only format=csv can be streamed; use /export/run for others")
        columns = [c.strip() for c in request.query.get("columns", "").split(",") if c.strip()] or None
        kind = check_content_type(request, ("application/json", "application/x-ndjson"))
        texts: AsyncGenerator[bytes, None] | None = None
        task: StreamTask | None = None  # a source: read and encoded on the slot's worker, sent from here
        inline: Iterator[tuple[int, bytes]] | None = None  # records in the body: encoded in a thread
        if kind == "application/json":
            _, body = await read_json_body(request, service.settings.max_body_bytes)
            if isinstance(body, dict):
                body = {**body, "format": "csv", **({"columns": columns} if columns else {})}
            export = parse_export_request(body, service.formats, service.sources, service.limits)
            user = export.user if identity(request) is None else identity(request).name  # type: ignore[union-attr]
            if export.source is not None:
                task = StreamTask(export.source.open, export.params, export.columns, neutralise, SOURCE_BATCH)
            else:
                records = export.records or []
                wanted = export.columns or (list(records[0].keys()) if records else [])
                inline = csv_chunks((records[i:i + BATCH] for i in range(0, len(records), BATCH)),
                                    CsvEncoder(wanted, neutralise), BATCH)
        else:
            who = identity(request)
            user = who.name if who is not None else request.query.get("user", "anonymous")
            texts = _ndjson_texts(_ndjson_batches(request, service.limits), columns, neutralise, counter)
        ticket = service.admit()
    except BadRequest as exc:
        return failure(exc.status, exc.code, exc.message)
    except QueueFull as exc:
        service.metrics.rejected("csv", "queue_full")
        return failure(429, "export_queue_full", str(exc), headers={"Retry-After": str(exc.retry_after)},
                       retryAfter=exc.retry_after)
    try:
        slot = await service.limiter.wait(ticket)
        if task is not None:
            try:
                texts = _counted(await service.workers.stream(slot, task), counter)
            except RenderFailed as exc:
                return failure(400 if exc.reason in CLIENT_ERRORS else 500, exc.reason, exc.message)
        elif inline is not None:
            texts = _counted(in_thread(inline), counter)
        assert texts is not None
        return await _respond(request, service, texts, user, counter)
    finally:
        service.limiter.leave(ticket)


async def _respond(request: web.Request, service: Any, texts: AsyncGenerator[bytes, None], user: str,
                   counter: Counter) -> web.StreamResponse:
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
    await response.prepare(request)
    nbytes = 0
    try:
        async with contextlib.aclosing(texts):
            async for data in texts:
                nbytes += await send(data)
    except StreamFailed as exc:
        await send(error_line(exc.code, exc.message))
        metrics.failed("csv", user, exc.code, counter.records, nbytes, time.perf_counter() - started)
        await send.close()
        return response
    await send.close()
    metrics.succeeded("csv", user, counter.records, nbytes, time.perf_counter() - started)
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
