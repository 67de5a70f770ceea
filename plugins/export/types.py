"""The shapes shared by writers, sources and the render workers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

Record = Mapping[str, Any]


class ExportCancelled(Exception):
    """The export was cancelled (by DELETE, a client that went away, or shutdown)."""


class Control(Protocol):
    """How a writer reports progress and learns that it must stop."""

    def progress(self, records: int) -> None:
        """Report the records written so far; raises :class:`ExportCancelled` when the export must stop."""


class NoControl:
    """For writers used directly (tests, benchmarks): never cancelled, progress ignored."""

    def progress(self, records: int) -> None:
        pass


@dataclass(frozen=True)
class Meta:
    """What a writer may print about the export: title, user, generated-at, the total when known."""

    title: str
    user: str
    generated_at: str
    total: int | None = None


@dataclass
class WriteStats:
    """What a writer reports: records written, and how the output is laid out."""

    records: int
    extension: str
    content_type: str
    pages: int | None = None
    volumes: int | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)


#: ``write(records, columns, meta, out, options, control) -> WriteStats``
Writer = Callable[[Iterable[Record], list[str], Meta, Any, Mapping[str, Any], Control], WriteStats]


@dataclass(frozen=True)
class ExportFormat:
    """A format plugins add through ``export_register_formats``. ``write`` must be importable by name
    (a module-level function) so that a worker process can run it."""

    name: str
    write: Writer
    description: str = ""


@dataclass(frozen=True)
class SourceRecords:
    """What a data source opens: its columns, a lazy iterator of records, the total when known.

    With ``tuples``, records are tuples in ``columns`` order (cheaper than dicts; the CSV writer takes them
    as they are, other writers get dicts). ``batches``, when given, are the same records a list at a time
    (``records`` is then their concatenation): cheaper to pull in bulk; a consumer takes one or the other.
    """

    columns: list[str]
    records: Iterator[Any]
    total: int | None = None
    tuples: bool = False
    batches: Iterator[list[Any]] | None = None


@dataclass(frozen=True)
class DataSource:
    """A named source of records plugins add through ``export_register_sources``.

    ``check_params(params) -> params`` runs in the server (raise ``ValueError`` for a 400);
    ``open(params) -> SourceRecords`` runs where the export renders; both module-level functions.
    """

    name: str
    check_params: Callable[[Mapping[str, Any]], dict[str, Any]]
    open: Callable[[Mapping[str, Any]], SourceRecords]
    description: str = ""
