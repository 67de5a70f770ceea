"""HTTP handlers of the export plugin: the compatible ``/export/run``, status, metrics and jobs."""

from __future__ import annotations

import asyncio
import base64
import time
import urllib.parse
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from host import is_draining

from . import __version__
from .jobs import CANCELLED, FINISHED, SUCCEEDED, ExportJob, utc_now
from .limiter import QueueFull
from .payload import BadRequest, parse_export_request, read_json_body
from .service import ExportService

SERVICE = web.AppKey("export_service", ExportService)
EXPORT_REGISTRY = web.AppKey("export_registry", CollectorRegistry)

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


@routes.post("/export/run")
async def run_export(request: web.Request) -> web.Response:
    """Export and wait: 200 with the result, 202 when it waited past ``queue_timeout_s``."""
    received = time.perf_counter()
    service = request.app[SERVICE]
    if is_draining(request.app):
        return failure(503, "draining", "the server is shutting down; retry on another instance or later",
                       headers={"Retry-After": "5"})
    try:
        body = await read_json_body(request, service.settings.max_body_bytes)
        export = parse_export_request(body, service.formats, service.sources)
    except BadRequest as exc:
        return failure(exc.status, exc.code, exc.message)
    try:
        job, ticket, task = service.submit(export)
    except QueueFull as exc:
        service.metrics.rejected(export.format.name, "queue_full")
        return failure(429, "export_queue_full", str(exc), headers={"Retry-After": str(exc.retry_after)},
                       retryAfter=exc.retry_after)
    try:
        granted, _ = await asyncio.wait({ticket.granted}, timeout=service.settings.queue_timeout_s)
    except asyncio.CancelledError:  # the client went away while queued: give the place back
        task.cancel()
        raise
    if not granted:
        return web.json_response(
            {"success": True, "accepted": True, "job": job.summary(), "timestamp": utc_now(),
             "message": f"still queued after {service.settings.queue_timeout_s:g} s; the export goes on: "
                        f"poll {job.summary()['url']}"},
            status=202, headers={"Location": f"/export/jobs/{job.id}"})
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
    return failure(500, job.error_code or "export_failed", job.error_message or "the export failed",
                   job=job.summary(), processingTime=elapsed_ms)


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
    job = request.app[SERVICE].jobs.get(request.match_info["job_id"])
    if job is None:
        raise web.HTTPNotFound(text=f"no export job {request.match_info['job_id']!r}")
    return job


@routes.get("/export/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    """Jobs, newest first; ``?status=`` filters, ``?limit=`` (1..1000, default 100) pages."""
    jobs = request.app[SERVICE].jobs.all()[::-1]
    status = request.query.get("status")
    if status:
        jobs = [job for job in jobs if job.status == status]
    try:
        limit = int(request.query.get("limit", "100"))
        if not 1 <= limit <= 1000:
            raise ValueError
    except ValueError:
        return failure(400, "invalid_limit", f"'limit' must be an integer 1..1000, got {request.query['limit']!r}")
    return web.json_response({"jobs": [job.as_json() for job in jobs[:limit]]})


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
        service.cancel(job)
        await job.finished.wait()
    elif job.status == SUCCEEDED:
        path = service.file_of(job)
        if path is not None:
            path.unlink(missing_ok=True)
        job.mark_finished("expired", None, None)
    return web.json_response(job.as_json())

