"""Export jobs: what was asked, where it stands, and what came out."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED = (
    "queued", "running", "succeeded", "failed", "cancelled", "expired")
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
    started: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def download(self) -> str | None:
        return f"/export/jobs/{self.id}/download" if self.status == SUCCEEDED else None

    def mark_running(self) -> None:
        self.status, self.started_at = RUNNING, utc_now()
        self.started.set()

    def mark_finished(self, status: str, code: str | None = None, message: str | None = None) -> None:
        self.status, self.finished_at = status, utc_now()
        self.error_code, self.error_message = code, message
        self.started.set()
        self.finished.set()

    def summary(self) -> dict[str, Any]:
        """The short form inside ``POST /export/run`` answers."""
        return {"id": self.id, "status": self.status, "download": self.download, "url": f"/export/jobs/{self.id}"}

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "format": self.format,
            "title": self.title,
            "user": self.user,
            "progress": {"records_written": self.records_written, "records_total": self.records_total},
            "bytes": self.bytes,
            "sha256": self.sha256,
            "filename": self.filename,
            "content_type": self.content_type,
            "pages": self.pages,
            "volumes": self.volumes,
            "parts": self.parts,
            "error": {"code": self.error_code, "message": self.error_message} if self.error_code else None,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "download": self.download,
        }


class JobStore:
    """Jobs of one app, in memory, newest last."""

    def __init__(self) -> None:
        self._jobs: dict[str, ExportJob] = {}

    def add(self, job: ExportJob) -> None:
        self._jobs[job.id] = job

    def get(self, job_id: str) -> ExportJob | None:
        return self._jobs.get(job_id)

    def all(self) -> list[ExportJob]:
        return list(self._jobs.values())

    def by_filename(self) -> dict[str, ExportJob]:
        return {job.filename: job for job in self._jobs.values() if job.filename}
