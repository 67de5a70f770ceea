"""The export service of one app: limiter, workers, jobs and metrics, and the life of one export."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from .config import ExportSettings
from .files import apply_retention, prepare_dir
from .jobs import CANCELLED, EXPIRED, FAILED, SUCCEEDED, ExportJob, JobStore
from .limiter import ExportLimiter, Ticket
from .metrics import ExportMetrics
from .payload import ExportRequest
from .render import RenderFailed, RenderTask
from .types import DataSource, ExportCancelled, ExportFormat, Meta
from .workers import WorkerPool, make_workers

log = logging.getLogger("executor.export")

MEMORY_SAMPLE_S = 0.5
RETENTION_EVERY_S = 600.0


class ExportService:
    def __init__(self, settings: ExportSettings, metrics: ExportMetrics, formats: dict[str, ExportFormat],
                 sources: dict[str, DataSource]) -> None:
        self.settings = settings
        self.metrics = metrics
        self.formats = formats
        self.sources = sources
        self.limiter = ExportLimiter(settings.max_concurrent, settings.max_queue)
        self.jobs = JobStore()
        self.workers: WorkerPool = make_workers(settings.workers, settings.max_concurrent)
        self.tasks: set[asyncio.Task[None]] = set()
        self.running_formats: dict[str, str] = {}
        metrics.bind(lambda: self.limiter.running, lambda: self.limiter.queued)

    # -- lifecycle ----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ExportService]:
        """Start the workers and the periodic chores; at exit cancel what is left and stop the workers."""
        prepare_dir(self.settings.dir)
        self.workers.start()
        chores = [asyncio.create_task(self._sample_memory()), asyncio.create_task(self._retention_loop())]
        try:
            yield self
        finally:
            for task in chores + list(self.tasks):
                task.cancel()
            await asyncio.gather(*chores, *self.tasks, return_exceptions=True)
            await self.workers.close()

    async def _sample_memory(self) -> None:
        while True:
            await asyncio.sleep(MEMORY_SAMPLE_S)
            for fmt in set(self.running_formats.values()):
                self.metrics.sample_memory(fmt, self.workers.pids())

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.to_thread(self.retention)
            await asyncio.sleep(RETENTION_EVERY_S)

    def retention(self) -> list[str]:
        """Delete files past ``ttl_hours`` / ``max_total_bytes``; their jobs read ``expired``."""
        report = apply_retention(self.settings.dir, self.settings.ttl_hours, self.settings.max_total_bytes)
        by_name = self.jobs.by_filename()
        for name in report.deleted:
            job = by_name.get(name)
            if job is not None and job.status == SUCCEEDED:
                job.mark_finished(EXPIRED)
        return report.deleted

    # -- one export ---------------------------------------------------------------------------------

    def submit(self, request: ExportRequest) -> tuple[ExportJob, Ticket, asyncio.Task[None]]:
        """Take a place in the limiter (:class:`QueueFull` when there is none) and start the export."""
        job = ExportJob(format=request.format.name, title=request.title, user=request.user)
        job.records_total = request.records_total
        ticket = self.limiter.enter()
        self.jobs.add(job)
        task = asyncio.create_task(self._execute(job, ticket, request), name=job.id)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return job, ticket, task

    def _task(self, job: ExportJob, request: ExportRequest) -> RenderTask:
        stamp = dt.datetime.now(dt.UTC)
        return RenderTask(
            job_id=job.id,
            stem=f"export-{job.format}-{stamp:%Y%m%dT%H%M%SZ}-{job.id[:12]}",
            writer=request.format.write,
            meta=Meta(title=request.title, user=request.user,
                      generated_at=stamp.isoformat(timespec="seconds").replace("+00:00", "Z")),
            directory=str(self.settings.dir),
            options=self.settings.render_options(),
            columns=request.columns,
            records=request.records,
            source_open=request.source.open if request.source else None,
            params=request.params,
        )

    async def _execute(self, job: ExportJob, ticket: Ticket, request: ExportRequest) -> None:
        try:
            slot = await self.limiter.wait(ticket)
        except asyncio.CancelledError:
            job.mark_finished(CANCELLED, "cancelled", "cancelled while queued")
            self.metrics.rejected(job.format, "cancelled")
            raise
        job.mark_running()
        self.metrics.started(job.format, job.user)
        self.running_formats[job.id] = job.format
        started = time.perf_counter()

        def progress(records: int) -> None:
            job.records_written = records

        try:
            result = await self.workers.run(slot, self._task(job, request), progress)
        except (asyncio.CancelledError, ExportCancelled):
            job.mark_finished(CANCELLED, "cancelled", "the export was cancelled")
            self.metrics.rejected(job.format, "cancelled")
            raise
        except RenderFailed as exc:
            job.bytes = exc.written
            job.mark_finished(FAILED, exc.reason, exc.message)
            self.metrics.failed(job.format, job.user, exc.reason, job.records_written, exc.written,
                                time.perf_counter() - started)
            log.warning("export %s failed: %s: %s", job.id, exc.reason, exc.message)
        else:
            job.records_written, job.bytes, job.sha256 = result.records, result.bytes, result.sha256
            job.filename, job.content_type = result.filename, result.content_type
            job.pages, job.volumes, job.parts = result.pages, result.volumes, result.parts
            job.mark_finished(SUCCEEDED)
            self.metrics.succeeded(job.format, job.user, result.records, result.bytes,
                                   time.perf_counter() - started)
        finally:
            self.running_formats.pop(job.id, None)
            self.metrics.sample_memory(job.format, self.workers.pids())
            self.limiter.leave(ticket, time.perf_counter() - started)

    def file_of(self, job: ExportJob) -> Path | None:
        if job.status != SUCCEEDED or not job.filename:
            return None
        path = self.settings.dir / job.filename
        return path if path.is_file() else None

    def status(self) -> str:
        if self.limiter.queued >= self.limiter.max_queue and self.limiter.running >= self.limiter.max_concurrent:
            return "saturated"
        return "busy" if self.limiter.running >= self.limiter.max_concurrent else "ready"

    def cancel(self, job: ExportJob) -> None:
        for task in self.tasks:
            if task.get_name() == job.id:
                task.cancel()

