"""Export jobs, and the durable job store behind them (SQLite in WAL mode, in the exports dir).

The store is the only place that knows how jobs are kept; :class:`JobStore` is the interface another
backend (Redis, for several executor instances) implements. Live jobs (queued or running) are also held in
memory, for their progress and the events their waiters wait on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED = (
    "queued", "running", "succeeded", "failed", "cancelled", "expired")
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED)
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED, EXPIRED})


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(eq=False)
class ExportJob:
    format: str
    title: str
    user: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str = QUEUED
    created_at: str = field(default_factory=utc_now)
    started_at: str | None = None
    finished_at: str | None = None
    columns: list[str] | None = None
    source: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    spool: str | None = None
    spool_kind: str | None = None
    attempts: int = 0
    records_total: int | None = None
    records_written: int = 0
    bytes: int = 0
    sha256: str | None = None
    filename: str | None = None
    content_type: str | None = None
    pages: int | None = None
    volumes: int | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None
    seq: int | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def url(self) -> str:
        return f"/export/jobs/{self.id}"

    @property
    def download(self) -> str | None:
        return f"{self.url}/download" if self.status == SUCCEEDED else None

    def mark_running(self) -> None:
        self.status, self.started_at = RUNNING, utc_now()
        self.attempts += 1
        self.started.set()

    def mark_finished(self, status: str, code: str | None = None, message: str | None = None) -> None:
        self.status, self.finished_at = status, utc_now()
        self.error_code, self.error_message = code, message
        self.started.set()
        self.finished.set()

    def summary(self) -> dict[str, Any]:
        """The short form inside ``POST /export/run`` answers."""
        return {"id": self.id, "status": self.status, "download": self.download, "url": self.url}

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "format": self.format,
            "title": self.title,
            "user": self.user,
            "source": self.source,
            "progress": {"records_written": self.records_written, "records_total": self.records_total},
            "bytes": self.bytes,
            "sha256": self.sha256,
            "filename": self.filename,
            "content_type": self.content_type,
            "pages": self.pages,
            "volumes": self.volumes,
            "parts": self.parts,
            "attempts": self.attempts,
            "error": {"code": self.error_code, "message": self.error_message} if self.error_code else None,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "url": self.url,
            "download": self.download,
        }


class JobStore(Protocol):
    """Where jobs are kept. Implementations: :class:`SqliteJobStore`; a Redis one is planned."""

    def add(self, job: ExportJob) -> None:
        """Keep a new job (before it is acknowledged to its client)."""

    def save(self, job: ExportJob) -> None:
        """Persist the job's current state."""

    def get(self, job_id: str) -> ExportJob | None: ...

    def page(self, status: str | None, limit: int, cursor: str | None,
             user: str | None = None) -> tuple[list[ExportJob], str | None]:
        """Jobs newest first (of ``user`` only, when given), after ``cursor``; the next page's cursor or None."""

    def unfinished(self) -> list[ExportJob]:
        """Queued and running jobs, oldest first (what a restart must take up again)."""

    def succeeded_files(self) -> dict[str, ExportJob]:
        """Succeeded jobs by file name."""

    def close(self) -> None: ...


_STORED = [f.name for f in fields(ExportJob) if f.name not in {"started", "finished", "seq"}]
_JSON_FIELDS = {"columns", "params", "parts"}


class SqliteJobStore:
    """Jobs in ``DIR/.jobs.sqlite`` (WAL); live jobs also in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        columns = ", ".join(name for name in _STORED if name != "id")  # no affinity: values keep their types
        self.db.execute(f"CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                        f"id TEXT UNIQUE NOT NULL, {columns})")
        self.db.execute("CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq)")
        self._live: dict[str, ExportJob] = {}

    def _row(self, job: ExportJob) -> list[Any]:
        values = []
        for name in _STORED:
            value = getattr(job, name)
            values.append(json.dumps(value) if name in _JSON_FIELDS else value)
        return values

    def _job(self, row: sqlite3.Row | tuple[Any, ...]) -> ExportJob:
        seq, *values = row
        data = dict(zip(["id", *[n for n in _STORED if n != "id"]], values, strict=True))
        for name in _JSON_FIELDS:
            data[name] = json.loads(data[name]) if data[name] is not None else None
        data["parts"] = data["parts"] or []
        data["params"] = data["params"] or {}
        job = ExportJob(**data, seq=seq)
        if job.status in FINISHED:
            job.started.set()
            job.finished.set()
        elif job.status == RUNNING:
            job.started.set()
        return job

    def add(self, job: ExportJob) -> None:
        names = ", ".join(_STORED)
        marks = ", ".join("?" for _ in _STORED)
        cursor = self.db.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", self._row(job))
        job.seq = cursor.lastrowid
        self._live[job.id] = job

    def save(self, job: ExportJob) -> None:
        assignments = ", ".join(f"{name} = ?" for name in _STORED if name != "id")
        values = [v for name, v in zip(_STORED, self._row(job), strict=True) if name != "id"]
        self.db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", [*values, job.id])
        if job.status in FINISHED:
            self._live.pop(job.id, None)
        else:
            self._live[job.id] = job

    def _select(self, where: str = "", args: tuple[Any, ...] = (), order: str = "seq DESC",
                limit: int | None = None) -> list[ExportJob]:
        sql = f"SELECT seq, id, {', '.join(n for n in _STORED if n != 'id')} FROM jobs {where} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._live.get(row[1]) or self._job(row) for row in self.db.execute(sql, args)]

    def get(self, job_id: str) -> ExportJob | None:
        if job_id in self._live:
            return self._live[job_id]
        found = self._select("WHERE id = ?", (job_id,))
        return found[0] if found else None

    def page(self, status: str | None, limit: int, cursor: str | None,
             user: str | None = None) -> tuple[list[ExportJob], str | None]:
        clauses: list[str] = []
        args: list[Any] = []
        if user is not None:
            clauses.append("user = ?")
            args.append(user)
        if status:
            clauses.append("status = ?")
            args.append(status)
        if cursor:
            clauses.append("seq < ?")
            args.append(int(cursor))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        jobs = self._select(where, tuple(args), limit=limit + 1)
        more = len(jobs) > limit
        jobs = jobs[:limit]
        return jobs, (str(jobs[-1].seq) if more and jobs else None)

    def unfinished(self) -> list[ExportJob]:
        jobs = self._select("WHERE status IN (?, ?)", (QUEUED, RUNNING), order="seq ASC")
        for job in jobs:
            self._live[job.id] = job
        return jobs

    def succeeded_files(self) -> dict[str, ExportJob]:
        return {job.filename: job for job in self._select("WHERE status = ?", (SUCCEEDED,)) if job.filename}

    def close(self) -> None:
        self.db.close()
