"""One export, start to file: open the records, run the format's writer into an atomic file.

This module runs inside the render workers (processes or threads), so it imports no server code.
"""

from __future__ import annotations

import errno
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from .csv_writer import CsvEncoder, write_csv
from .files import AtomicOutput
from .types import Control, ExportCancelled, Meta, SourceRecords, Writer


@dataclass(frozen=True)
class RenderTask:
    """Everything a worker needs, as plain picklable data (functions travel by their import name)."""

    job_id: str
    stem: str
    writer: Writer
    meta: Meta
    directory: str
    options: Mapping[str, Any]
    columns: list[str] | None = None
    records: Sequence[Mapping[str, Any]] | None = None
    source_open: Callable[[Mapping[str, Any]], SourceRecords] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    spool: str | None = None
    spool_kind: str | None = None  # "json": the request body; "ndjson": one record a line
    total: int | None = None


@dataclass(frozen=True)
class RenderResult:
    records: int
    bytes: int
    sha256: str
    filename: str
    extension: str
    content_type: str
    seconds: float
    pages: int | None = None
    volumes: int | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)


class RenderFailed(Exception):
    """An export failed; ``reason`` is the ``export_fail_total`` label, ``bytes`` what was written."""

    def __init__(self, reason: str, message: str, written: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.written = written


#: Every digit as "0", so that a run of 19 digits (an integer past 64 bits may need them: orjson would read it
#: as a float) is one substring search.
_DIGITS_AS_ZERO = bytes(ord("0") if ord("0") <= byte <= ord("9") else byte for byte in range(256))
_LONG_DIGITS = b"0" * 19


def _loads(data: bytes) -> Any:
    """JSON the server has already checked: orjson (several times faster), or json where orjson would not
    read it exactly (integers past 64 bits) or refuses it (lone surrogates)."""
    if _LONG_DIGITS in data.translate(_DIGITS_AS_ZERO):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def spooled_body(path: str) -> tuple[list[dict[str, Any]], list[str] | None]:
    """The records of a spooled JSON body and the columns it asks for (a render may start before the server
    has read the body: then these are its only source)."""
    with open(path, "rb") as spool:
        body = _loads(spool.read())
    return body["data"], body.get("columns") or None


def spooled_lines(path: str) -> Iterator[dict[str, Any]]:
    """The records of a spooled NDJSON body."""
    with open(path, "rb") as spool:
        for line in spool:
            if line.strip():
                yield _loads(line)


def check_columns(source: SourceRecords, columns: list[str]) -> None:
    missing = [column for column in columns if column not in source.columns]
    if missing:
        raise RenderFailed("invalid_columns", f"the source has no column {missing[0]!r}")


def rows_for(source: SourceRecords, columns: list[str], as_dicts: bool) -> Iterator[Any]:
    """A tuple source's rows for ``columns`` (checked with :func:`check_columns`): tuples in that order, or
    dicts for writers that want them."""
    if as_dicts:
        return (dict(zip(source.columns, row, strict=True)) for row in source.records)
    if columns == source.columns:
        return source.records
    pick = itemgetter(*(source.columns.index(column) for column in columns))
    if len(columns) == 1:
        return ((value,) for value in map(pick, source.records))
    return map(pick, source.records)


def row_batches(source: SourceRecords, columns: list[str], size: int = 1000) -> Iterator[list[Any]]:
    """A source's records for ``columns`` (checked), a list at a time: its own batches when it has them, a
    tuple source's rows in ``columns`` order, a dict source's records as they are."""
    if source.batches is not None and columns == source.columns:
        return source.batches
    rows = rows_for(source, columns, as_dicts=False) if source.tuples else source.records
    return iter(lambda: list(itertools.islice(rows, size)), [])


@dataclass(frozen=True)
class StreamTask:
    """A source streamed back as CSV (``POST /export/stream``), run where exports render."""

    source_open: Callable[[Mapping[str, Any]], SourceRecords]
    params: Mapping[str, Any]
    columns: list[str] | None
    neutralise: bool
    chunk_records: int = 20000


def open_csv_stream(task: StreamTask) -> Iterator[tuple[int, bytes]]:
    """Open the source now (:class:`RenderFailed` for a column it lacks); then ``(records, CSV bytes)`` about
    ``chunk_records`` records at a time, the header first (0 records)."""
    source = task.source_open(task.params)
    columns = task.columns or source.columns
    check_columns(source, columns)
    return csv_chunks(row_batches(source, columns), CsvEncoder(columns, task.neutralise), task.chunk_records)


def csv_chunks(batches: Iterator[list[Any]], encoder: CsvEncoder, size: int) -> Iterator[tuple[int, bytes]]:
    """The header, then ``(records, bytes)`` of the CSV of ``batches``, about ``size`` records at a time."""
    yield 0, encoder.header().encode()
    texts, records = [], 0
    for batch in batches:
        texts.append(encoder.encode(batch))
        records += len(batch)
        if records >= size:
            yield records, "".join(texts).encode()
            texts, records = [], 0
    if records:
        yield records, "".join(texts).encode()


def render(task: RenderTask, control: Control) -> RenderResult:
    """Run ``task``; raises :class:`RenderFailed` (with a reason) or :class:`ExportCancelled`."""
    started = time.perf_counter()
    output = AtomicOutput(Path(task.directory), task.stem)
    try:
        records: Iterable[Mapping[str, Any]]
        if task.source_open is not None:
            source = task.source_open(task.params)
            records, columns, total = source.records, task.columns or source.columns, source.total
            check_columns(source, columns)
            if source.tuples:
                records = rows_for(source, columns, as_dicts=task.writer is not write_csv)
        elif task.spool is not None and task.spool_kind == "json":
            data, asked = spooled_body(task.spool)
            columns = task.columns or asked or (list(data[0].keys()) if data else [])
            records, total = data, len(data)
        elif task.spool is not None:
            iterator = spooled_lines(task.spool)
            first = next(iterator, None)
            columns = task.columns or (list(first.keys()) if first is not None else [])
            records = iterator if first is None else itertools.chain([first], iterator)
            total = task.total
        else:
            inline = task.records or []
            columns = task.columns or (list(inline[0].keys()) if inline else [])
            records, total = inline, len(inline)
        meta = replace(task.meta, total=total)
        options = {**task.options, "stem": task.stem, "work_dir": task.directory}
        with output as out:
            stats = task.writer(records, columns, meta, out, options, control)
            path = output.commit(stats.extension)
            return RenderResult(
                records=stats.records, bytes=out.bytes, sha256=out.hexdigest(), filename=path.name,
                extension=stats.extension, content_type=stats.content_type,
                seconds=time.perf_counter() - started, pages=stats.pages, volumes=stats.volumes,
                parts=stats.parts,
            )
    except (ExportCancelled, RenderFailed):
        raise
    except OSError as exc:
        written = output.out.bytes if output.out is not None else 0
        if exc.errno == errno.ENOSPC:
            raise RenderFailed("disk_full", f"no space left on the exports device: {exc}", written) from None
        raise RenderFailed("io_error", f"{type(exc).__name__}: {exc}", written) from None
    except Exception as exc:  # noqa: BLE001 - a writer or source bug fails this export, not the worker
        written = output.out.bytes if output.out is not None else 0
        raise RenderFailed("render_error", f"{type(exc).__name__}: {exc}", written) from None
