"""The export service of one app: limiter, workers, the durable job store, metrics, and the life of a job.

A job is accepted only once its input is on disk (the spool) and its row is in the store; from then on a
restart loses nothing: queued jobs run again, a job that was running is retried once from its spool and
then marked ``failed`` with code ``interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from .config import ExportSettings
from .files import apply_retention, prepare_dir
from .jobs import CANCELLED, EXPIRED, FAILED, QUEUED, RUNNING, SUCCEEDED, ExportJob, JobStore, SqliteJobStore
from .limiter import ExportLimiter, Ticket
from .metrics import ExportMetrics
from .payload import ExportRequest, Limits
from .render import RenderFailed, RenderResult, RenderTask
from .types import DataSource, ExportCancelled, ExportFormat, Meta
from .workers import WorkerPool, make_workers

log = logging.getLogger("executor.export")

MEMORY_SAMPLE_S = 0.5
RETENTION_EVERY_S = 600.0
MAX_ATTEMPTS = 2


class ExportService:
    def __init__(self, settings: ExportSettings, metrics: ExportMetrics, formats: dict[str, ExportFormat],
                 sources: dict[str, DataSource]) -> None:
        self.settings = settings
        self.metrics = metrics
        self.formats = formats
        self.sources = sources
        self.limiter = ExportLimiter(settings.max_concurrent, settings.max_queue)
        self.limits = Limits(**settings.limits)
        self.workers: WorkerPool = make_workers(settings.workers, settings.max_concurrent)
        self.spool_dir = settings.dir / ".spool"
        self.jobs: JobStore
        self.tasks: set[asyncio.Task[None]] = set()
        self.running_formats: dict[str, str] = {}
        self.stopping = False
        metrics.bind(lambda: self.limiter.running, lambda: self.limiter.queued)

    # -- lifecycle ----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ExportService]:
        """Open the store, start the workers, take up unfinished jobs; at exit stop it all (jobs stay queued)."""
        prepare_dir(self.settings.dir)
        self.spool_dir.mkdir(mode=0o700, exist_ok=True)
        self.jobs = SqliteJobStore(self.settings.dir / ".jobs.sqlite")
        self.workers.start()
        self._recover()
        chores = [asyncio.create_task(self._sample_memory()), asyncio.create_task(self._retention_loop())]
        try:
            yield self
        finally:
            await self.drain()
            for task in chores + list(self.tasks):
                task.cancel()
            await asyncio.gather(*chores, *self.tasks, return_exceptions=True)
            await self.workers.close()
            self.jobs.close()

    async def drain(self) -> None:
        """Shutdown: start no queued job (they stay queued in the store), let running ones finish within
        ``drain_grace_s``. Whatever is cut short after that is retried at the next start."""
        self.stopping = True
        self.limiter.closed = True
        running = [task for task in self.tasks if task.get_name() in self.running_formats]
        for task in self.tasks:
            if task not in running:
                task.cancel()
        if running:
            log.info("draining: %d running export(s), up to %.0f s", len(running), self.settings.drain_grace_s)
            await asyncio.wait(running, timeout=self.settings.drain_grace_s)

    def _recover(self) -> None:
        unfinished = self.jobs.unfinished()
        for job in unfinished:
            if job.status == RUNNING and job.attempts >= MAX_ATTEMPTS:
                job.mark_finished(FAILED, "interrupted", f"the server stopped while this export ran "
                                                         f"({job.attempts} attempts)")
                self.jobs.save(job)
                self._drop_spool(job)
                continue
            if job.status == RUNNING:
                log.warning("export %s was running when the server stopped: retrying from its spool", job.id)
            job.status = QUEUED
            self.jobs.save(job)
            self.start(job, self.limiter.enter(force=True))
        # a spool no stored job owns: its body was still being checked when the server stopped, so it was
        # never accepted
        kept = {Path(job.spool).name for job in unfinished if job.spool and job.status != FAILED}
        for path in self.spool_dir.iterdir():
            if path.name not in kept:
                path.unlink(missing_ok=True)

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
        if report.deleted:
            by_name = self.jobs.succeeded_files()
            for name in report.deleted:
                job = by_name.get(name)
                if job is not None:
                    job.mark_finished(EXPIRED, None, None)
                    self.jobs.save(job)
        return report.deleted

    # -- accepting a job ----------------------------------------------------------------------------

    def admit(self) -> Ticket:
        """A place in the limiter, or :class:`QueueFull` (nothing is spooled before this)."""
        return self.limiter.enter()

    def new_job(self, request: ExportRequest, spool_kind: str | None = None) -> ExportJob:
        job = ExportJob(format=request.format.name, title=request.title, user=request.user,
                        columns=request.columns, source=request.source.name if request.source else None,
                        params=request.params)
        job.records_total = request.records_total
        if spool_kind is not None:
            job.spool, job.spool_kind = str(self.spool_dir / f"{job.id}.{spool_kind}"), spool_kind
        return job

    async def spool_body(self, job: ExportJob, raw: bytes) -> None:
        """Write a JSON body to the job's spool and fsync it, off the event loop."""
        assert job.spool is not None

        def write() -> None:
            with open(job.spool, "wb") as spool:  # type: ignore[arg-type]
                spool.write(raw)
                spool.flush()
                os.fsync(spool.fileno())

        await asyncio.to_thread(write)

    def start(self, job: ExportJob, ticket: Ticket, checked: asyncio.Future[bool] | None = None
              ) -> asyncio.Task[None]:
        """Keep the job in the store (its input is already spooled) and run it when its turn comes; with
        ``checked``, render at once but store the job only when :meth:`confirm` is called."""
        if job.seq is None and checked is None:
            self.jobs.add(job)
        task = asyncio.create_task(self._execute(job, ticket, checked), name=job.id)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def confirm(self, job: ExportJob, request: ExportRequest, checked: asyncio.Future[bool]) -> None:
        """The body of a job started with ``checked`` passed its checks: take its options, store it."""
        job.format, job.title, job.user = request.format.name, request.title, request.user
        job.columns, job.records_total = request.columns, request.records_total
        self.jobs.add(job)
        checked.set_result(True)

    def _discard(self, job: ExportJob, result: RenderResult | None) -> None:
        """A job whose body was refused: its spool goes, and its file if the render was quicker."""
        self._drop_spool(job)
        if result is not None:
            (self.settings.dir / result.filename).unlink(missing_ok=True)

    def _drop_spool(self, job: ExportJob) -> None:
        if job.spool:
            Path(job.spool).unlink(missing_ok=True)

    # -- running a job ------------------------------------------------------------------------------

    def _task(self, job: ExportJob) -> RenderTask:
        fmt = self.formats.get(job.format)
        if fmt is None:
            raise RenderFailed("unknown_format", f"format {job.format!r} is no longer registered")
        source = self.sources.get(job.source) if job.source else None
        if job.source and source is None:
            raise RenderFailed("unknown_source", f"source {job.source!r} is no longer registered")
        stamp = dt.datetime.now(dt.UTC)
        return RenderTask(
            job_id=job.id,
            stem=f"export-{job.format}-{stamp:%Y%m%dT%H%M%SZ}-{job.id[:12]}",
            writer=fmt.write,
            meta=Meta(title=job.title, user=job.user,
                      generated_at=stamp.isoformat(timespec="seconds").replace("+00:00", "Z")),
            directory=str(self.settings.dir),
            options=self.settings.render_options(),
            columns=job.columns,
            source_open=source.open if source else None,
            params=job.params,
            spool=job.spool,
            spool_kind=job.spool_kind,
            total=job.records_total,
        )

    async def _execute(self, job: ExportJob, ticket: Ticket, checked: asyncio.Future[bool] | None = None) -> None:
        """Run ``job`` when its slot comes. With ``checked``, the job renders while the server still checks
        its body: it is neither stored nor counted until ``checked`` says the body passed, and a body that
        did not takes its render (and partial file) with it."""
        try:
            slot = await self.limiter.wait(ticket)
        except asyncio.CancelledError:
            if checked is None:
                self._finish_cancelled(job, "cancelled while queued")
            else:
                self._drop_spool(job)
            raise
        started = time.perf_counter()

        def progress(records: int) -> None:
            job.records_written = records

        rendering = asyncio.ensure_future(self.workers.run(slot, self._task(job), progress))
        accepted = checked is None  # from then on the job is like any other
        try:
            if checked is not None:
                if not await checked:
                    self._discard(job, await _abandon(rendering))
                    return
                accepted = True
            job.mark_running()
            self.jobs.save(job)
            self.metrics.started(job.format, job.user)
            self.running_formats[job.id] = job.format
            result = await rendering
        except (asyncio.CancelledError, ExportCancelled):
            if not accepted:  # cancelled before its body was accepted: nothing is kept
                self._discard(job, await _abandon(rendering))
                raise
            await _abandon(rendering)
            if self.stopping:
                raise  # the server stops: the job stays as it is in the store, to run again at restart
            self._finish_cancelled(job, "the export was cancelled")
            raise
        except RenderFailed as exc:
            job.bytes = exc.written
            job.mark_finished(FAILED, exc.reason, exc.message)
            self.jobs.save(job)
            self._drop_spool(job)
            self.metrics.failed(job.format, job.user, exc.reason, job.records_written, exc.written,
                                time.perf_counter() - started)
            log.warning("export %s failed: %s: %s", job.id, exc.reason, exc.message)
        else:
            job.records_written, job.bytes, job.sha256 = result.records, result.bytes, result.sha256
            job.filename, job.content_type = result.filename, result.content_type
            job.pages, job.volumes, job.parts = result.pages, result.volumes, result.parts
            job.records_total = result.records
            job.mark_finished(SUCCEEDED)
            self.jobs.save(job)
            self._drop_spool(job)
            self.metrics.succeeded(job.format, job.user, result.records, result.bytes,
                                   time.perf_counter() - started)
        finally:
            self.running_formats.pop(job.id, None)
            self.metrics.sample_memory(job.format, self.workers.pids())
            self.limiter.leave(ticket, time.perf_counter() - started)

    def _finish_cancelled(self, job: ExportJob, message: str) -> None:
        if self.stopping:
            return  # shutting down: a queued job stays queued for the next start
        job.mark_finished(CANCELLED, "cancelled", message)
        self.jobs.save(job)
        self._drop_spool(job)
        self.metrics.rejected(job.format, "cancelled")

    # -- queries and commands -----------------------------------------------------------------------

    def file_of(self, job: ExportJob) -> Path | None:
        """A succeeded job's file: a regular file directly in the exports dir, never a link or anything outside."""
        if job.status != SUCCEEDED or not job.filename or "/" in job.filename or job.filename.startswith("."):
            return None
        path = self.settings.dir / job.filename
        if path.is_symlink() or not path.is_file() or path.resolve().parent != self.settings.dir.resolve():
            return None
        return path

    def status(self) -> str:
        if self.limiter.queued >= self.limiter.max_queue and self.limiter.running >= self.limiter.max_concurrent:
            return "saturated"
        return "busy" if self.limiter.running >= self.limiter.max_concurrent else "ready"

    def cancel(self, job: ExportJob) -> bool:
        """Cancel a queued or running job's task; False when it has none here."""
        for task in self.tasks:
            if task.get_name() == job.id:
                task.cancel()
                return True
        return False


async def _abandon(rendering: asyncio.Future[RenderResult]) -> RenderResult | None:
    """Cancel a render and wait until its worker has stopped (its partial file is then gone); the result
    when it had already finished."""
    rendering.cancel()
    with contextlib.suppress(asyncio.CancelledError, ExportCancelled, RenderFailed):
        return await asyncio.shield(rendering)
    return None
