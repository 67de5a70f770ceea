"""HTTP handlers of the export plugin: the compatible ``/export/run``, status, metrics and jobs."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
import urllib.parse
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from host import identity, is_draining

from . import __version__
from .jobs import CANCELLED, EXPIRED, FINISHED, STATUSES, SUCCEEDED, ExportJob, utc_now
from .limiter import QueueFull, Ticket
from .payload import (
    DEFAULT_TITLE,
    DEFAULT_USER,
    PARSE_IN_THREAD_BYTES,
    BadRequest,
    ExportRequest,
    check_content_type,
    ndjson_lines,
    ndjson_record,
    parse_export_request,
    parse_json_body,
    query_request,
    read_body,
)
from .service import ExportService

SERVICE = web.AppKey("export_service", ExportService)
EXPORT_REGISTRY = web.AppKey("export_registry", CollectorRegistry)

MAX_LINE_BYTES = 1024 * 1024
routes = web.RouteTableDef()


def failure(status: int, code: str, message: str, headers: dict[str, str] | None = None,
            **extra: Any) -> web.Response:
    """The export plugin's error answer: the host's error object plus ``"success": false``."""
    body = {"success": False, **extra, "error": {"code": code, "message": message}}
    return web.json_response(body, status=status, headers=headers)


def _result(job: ExportJob) -> dict[str, Any]:
    result: dict[str, Any] = {"success": True, "bytes": job.bytes, "filename": job.filename,
                              "records": job.records_written, "sha256": job.sha256,
                              "contentType": job.content_type}
    if job.pages is not None:
        result.update(pages=job.pages, volumes=job.volumes, parts=job.parts)
    return result


async def accept(request: web.Request) -> tuple[ExportJob, Ticket, asyncio.Task[None]] | web.Response:
    """Read and check an export request (JSON or NDJSON), take a place, spool its input, start it."""
    service = request.app[SERVICE]
    if is_draining(request.app):
        return failure(503, "draining", "the server is shutting down; retry on another instance or later",
                       headers={"Retry-After": "5"})
    ticket: Ticket | None = None
    job: ExportJob | None = None
    format_name = "csv"
    try:
        kind = check_content_type(request, ("application/json", "application/x-ndjson"))
        if kind == "application/json":
            if request.query:
                raise BadRequest("unknown_parameter", f"unknown query parameter {sorted(request.query)[0]!r}: a JSON "
                                                      "request carries its options in the body")
            raw = await read_body(request, service.settings.max_body_bytes)
            if len(raw) > PARSE_IN_THREAD_BYTES and CSV_BODY.match(raw):
                started = await _render_while_checking(request, service, raw)
                if started is not None:
                    return started
            export = await _checked_request(request, service, raw)
            format_name = export.format.name
            ticket = service.admit()
            job = service.new_job(export, "json" if export.records is not None else None)
            if job.spool:
                await service.spool_body(job, raw)
        else:
            export = query_request(request.query, service.formats, service.limits)
            _claim(request, export)
            format_name = export.format.name
            ticket = service.admit()
            job = service.new_job(export, "ndjson")
            job.records_total = await spool_ndjson(request, job, service.settings.max_body_bytes * 64)
    except BadRequest as exc:
        _undo(service, ticket, job)
        return failure(exc.status, exc.code, exc.message)
    except QueueFull as exc:
        service.metrics.rejected(format_name, "queue_full")
        return failure(429, "export_queue_full", str(exc), headers={"Retry-After": str(exc.retry_after)},
                       retryAfter=exc.retry_after)
    except OSError as exc:
        _undo(service, ticket, job)
        return failure(507, "spool_failed", f"could not store the export's input: {exc}")
    except asyncio.CancelledError:
        _undo(service, ticket, job)
        raise
    return job, ticket, service.start(job, ticket)


def _claim(request: web.Request, export: ExportRequest) -> None:
    """With tokens configured, an export belongs to its token's name: a client cannot claim another user."""
    who = identity(request)
    if who is not None:
        export.user = who.name


def _owner_filter(request: web.Request) -> str | None:
    """The user whose jobs this request may see: its own, or everyone's (None) for admins and no-auth hosts."""
    who = identity(request)
    return None if who is None or who.admin else who.name


#: A body that opens with ``"format": "csv"`` (as the original clients send it): it can be rendered while the
#: server still checks it, since a duplicate ``format`` key would fail the check.
CSV_BODY = re.compile(rb'\s*\{\s*"format"\s*:\s*"csv"\s*,')


async def _checked_request(request: web.Request, service: ExportService, raw: bytes) -> ExportRequest:
    """A JSON body parsed strictly and checked (every record of a big one off the event loop), its user claimed."""
    body = await parse_json_body(raw)
    if len(raw) > PARSE_IN_THREAD_BYTES:
        export = await asyncio.to_thread(parse_export_request, body, service.formats, service.sources,
                                         service.limits)
    else:
        export = parse_export_request(body, service.formats, service.sources, service.limits)
    _claim(request, export)
    return export


async def _render_while_checking(request: web.Request, service: ExportService,
                                 raw: bytes) -> tuple[ExportJob, Ticket, asyncio.Task[None]] | None:
    """A big CSV body: spool it and start its render at once, while this checks it (both cores work on it).
    The job is stored only once the body passes; a body that fails takes its render with it (the 4xx
    propagates). None when the body names a source rather than records: then it goes the usual way."""
    ticket = service.admit()
    who = identity(request)
    job = service.new_job(ExportRequest(service.formats["csv"], DEFAULT_TITLE,
                                        who.name if who is not None else DEFAULT_USER, None), "json")
    checked: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    try:
        await service.spool_body(job, raw)
    except BaseException:
        _undo(service, ticket, job)
        raise
    task = service.start(job, ticket, checked)
    try:
        export = await _checked_request(request, service, raw)
    except BaseException:
        await _drop(task, checked)
        raise
    if task.done():  # the server began to stop while the body was being checked
        await _drop(task, checked)
        raise BadRequest("draining", "the server is shutting down; retry on another instance or later", 503)
    if export.records is None or export.format.name != "csv":
        await _drop(task, checked)
        return None
    service.confirm(job, export, checked)
    return job, ticket, task


async def _drop(task: asyncio.Task[None], checked: asyncio.Future[bool]) -> None:
    """Stop a render whose body was refused, and wait until its spool and any file of it are gone."""
    checked.set_result(False)
    task.cancel()
    await asyncio.wait({task})


def _undo(service: ExportService, ticket: Ticket | None, job: ExportJob | None) -> None:
    if ticket is not None:
        service.limiter.leave(ticket)
    if job is not None and job.spool:
        Path(job.spool).unlink(missing_ok=True)


async def spool_ndjson(request: web.Request, job: ExportJob, max_bytes: int) -> int:
    """Check NDJSON lines as they arrive and append them to the job's spool; the record count."""
    assert job.spool is not None
    count = size = 0
    limits = request.app[SERVICE].limits
    with open(job.spool, "wb") as spool:
        async for lines in ndjson_lines(request, MAX_LINE_BYTES):
            for number, line in lines:
                size += len(line) + 1
                if size > max_bytes:
                    raise BadRequest("payload_too_large", f"NDJSON body is over {max_bytes} bytes", 413)
                ndjson_record(number, line, limits)
                spool.write(line + b"\n")
                count += 1
        spool.flush()
        os.fsync(spool.fileno())
    return count


CLIENT_ERRORS = frozenset({"invalid_columns"})


@routes.post("/export/run")
async def run_export(request: web.Request) -> web.Response:
    """Export and wait: 200 with the result, 202 when it waited past ``queue_timeout_s``."""
    received = time.perf_counter()
    service = request.app[SERVICE]
    accepted = await accept(request)
    if isinstance(accepted, web.Response):
        return accepted
    job, ticket, task = accepted
    try:
        granted, _ = await asyncio.wait({ticket.granted}, timeout=service.settings.queue_timeout_s)
    except asyncio.CancelledError:  # the client went away while queued: give the place back
        task.cancel()
        raise
    if not granted:
        return web.json_response(
            {"success": True, "accepted": True, "job": job.summary(), "timestamp": utc_now(),
             "message": f"still queued after {service.settings.queue_timeout_s:g} s; the export goes on: "
                        f"poll {job.url}"},
            status=202, headers={"Location": job.url})
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:  # the client went away while rendering: stop and free the slot
        task.cancel()
        raise
    elapsed_ms = round((time.perf_counter() - received) * 1000, 3)
    if job.status == SUCCEEDED:
        return web.json_response({"success": True, "result": _result(job), "records": job.records_written,
                                  "processingTime": elapsed_ms, "timestamp": utc_now(), "job": job.summary()})
    if job.status == CANCELLED:
        return failure(409, "export_cancelled", "the export was cancelled before it finished", job=job.summary())
    # a column the source lacks is only found once the source is open: still the request's fault
    status = 400 if job.error_code in CLIENT_ERRORS else 500
    return failure(status, job.error_code or "export_failed", job.error_message or "the export failed",
                   job=job.summary(), processingTime=elapsed_ms)


@routes.post("/export/jobs")
async def create_job(request: web.Request) -> web.Response:
    """Accept an export and answer at once: 202 with the job and its ``Location``."""
    accepted = await accept(request)
    if isinstance(accepted, web.Response):
        return accepted
    job, _, _ = accepted
    return web.json_response(job.as_json(), status=202, headers={"Location": job.url})


@routes.get("/export/status")
async def export_status(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.json_response({
        "status": "draining" if is_draining(request.app) else service.status(),
        "concurrentExports": service.limiter.running,
        "queueDepth": service.limiter.queued,
        "maxConcurrentExports": service.limiter.max_concurrent,
        "maxQueue": service.limiter.max_queue,
        "version": __version__,
        "timestamp": utc_now(),
    })


@routes.get("/export/metrics")
async def export_metrics(request: web.Request) -> web.Response:
    payload = generate_latest(request.app[EXPORT_REGISTRY])
    return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _job_or_404(request: web.Request) -> ExportJob:
    """The job named in the path, if this request may see it (another user's job is as good as absent)."""
    job = request.app[SERVICE].jobs.get(request.match_info["job_id"])
    owner = _owner_filter(request)
    if job is None or (owner is not None and job.user != owner):
        raise web.HTTPNotFound(text=f"no export job {request.match_info['job_id']!r}")
    return job


@routes.get("/export/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    """Jobs, newest first: ``?status=``, ``?limit=`` (1..1000, default 100), ``?cursor=`` from ``next_cursor``."""
    unknown = sorted(set(request.query) - {"status", "limit", "cursor"})
    if unknown:
        return failure(400, "unknown_parameter",
                       f"unknown query parameter {unknown[0]!r} (known: status, limit, cursor)")
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        return failure(400, "invalid_status", f"'status' must be one of {', '.join(STATUSES)}, got {status!r}")
    try:
        limit = int(request.query.get("limit", "100"))
        if not 1 <= limit <= 1000:
            raise ValueError
    except ValueError:
        return failure(400, "invalid_limit", f"'limit' must be an integer 1..1000, got {request.query['limit']!r}")
    cursor = request.query.get("cursor") or None
    if cursor is not None and not cursor.isdigit():
        return failure(400, "invalid_cursor", f"'cursor' must be a value of next_cursor, got {cursor!r}")
    jobs, next_cursor = request.app[SERVICE].jobs.page(status, limit, cursor, user=_owner_filter(request))
    return web.json_response({"jobs": [job.as_json() for job in jobs], "next_cursor": next_cursor})


@routes.get("/export/jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    return web.json_response(_job_or_404(request).as_json())


@routes.get("/export/jobs/{job_id}/download")
async def download(request: web.Request) -> web.StreamResponse:
    """The file, with Range, ETag / If-None-Match, Last-Modified, and its digest (RFC 9530)."""
    job = _job_or_404(request)
    path = request.app[SERVICE].file_of(job)
    if path is None:
        return failure(409 if job.status not in FINISHED else 410,
                       "not_ready" if job.status not in FINISHED else "gone",
                       f"job {job.id} is {job.status}; nothing to download")
    digest = base64.b64encode(bytes.fromhex(job.sha256 or "")).decode()
    quoted = urllib.parse.quote(path.name)
    return web.FileResponse(path, headers={
        "Content-Type": job.content_type or "application/octet-stream",
        "Content-Disposition": f"attachment; filename=\"{path.name}\"; filename*=UTF-8''{quoted}",
        "Repr-Digest": f"sha-256=:{digest}:",
    })


@routes.delete("/export/jobs/{job_id}")
async def delete_job(request: web.Request) -> web.Response:
    """Cancel a queued or running job; delete a finished job's file."""
    service = request.app[SERVICE]
    job = _job_or_404(request)
    if job.status not in FINISHED:
        if service.cancel(job):
            await job.finished.wait()
    elif job.status == SUCCEEDED:
        path = service.file_of(job)
        if path is not None:
            path.unlink(missing_ok=True)
        job.mark_finished(EXPIRED, None, None)
        service.jobs.save(job)
    return web.json_response(job.as_json())

