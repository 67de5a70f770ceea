"""Streamed CSV: RFC 4180, UTF-8, a header row, written in chunks; never the whole dataset in memory.

Values: ``None`` → empty, numbers as they are, ``True``/``False`` → ``true``/``false``, dates and datetimes
ISO 8601, nested values as JSON text. Text a spreadsheet would run as a formula (first character ``=``,
``+``, ``-``, ``@``, tab or CR) is prefixed with ``'``, unless it is a number such as ``-5``.
Columns are checked a chunk at a time with C-level operations (the set of value types, the set of first
characters); only a column that needs it is converted cell by cell, which keeps the common case as fast as
a bare ``csv.writer`` loop.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from operator import itemgetter
from typing import Any

from .types import Control, Meta, Record, WriteStats

FORMULA_START = frozenset("=+-@\t\r")
_PLAIN_TYPES = frozenset({int, float, type(None)})
#: Records converted at a time: small enough to stay in the CPU caches while the source makes them.
BATCH_ROWS = 100
_FIRST_CHAR = itemgetter(slice(0, 1))
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return str(value)


def cell(value: Any, neutralise: bool = True) -> Any:
    """One value as the CSV cell it becomes."""
    kind = type(value)
    if kind is str:
        if neutralise and value and value[0] in FORMULA_START and not _NUMBER.fullmatch(value):
            return "'" + value
        return value
    if value is None or kind is int or kind is float:
        return value
    if kind is bool:
        return "true" if value else "false"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=_json_default, separators=(",", ":"))
    if isinstance(value, (int, float)):
        return value
    return str(value)


def _clean(values: Sequence[Any], neutralise: bool) -> bool:
    """Whether a column of one chunk can be written as it is (decided with C-level operations only)."""
    kinds = set(map(type, values))
    if kinds <= _PLAIN_TYPES:
        return True
    if kinds == {str}:
        return not neutralise or FORMULA_START.isdisjoint(map(_FIRST_CHAR, values))
    return False


def _columns(chunk: list[Record], columns: list[str], getters: list[Any]) -> list[list[Any]]:
    try:
        return [list(map(getter, chunk)) for getter in getters]
    except KeyError:  # a record lacks a column: look each one up
        return [[record.get(column) for record in chunk] for column in columns]


class CsvEncoder:
    """CSV text a chunk at a time (for files and for streamed responses), converting only the columns of a
    chunk that need it."""

    def __init__(self, columns: list[str], neutralise: bool = True) -> None:
        self.columns = columns
        self.neutralise = neutralise
        self._getters = [itemgetter(column) for column in columns]
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def take(self) -> str:
        """The text made since the last take."""
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text

    def header(self) -> str:
        self._writer.writerow([cell(c, self.neutralise) for c in self.columns])
        return self.take()

    def add(self, chunk: list[Record]) -> None:
        """Make the rows of ``chunk``, to be taken later."""
        for start in range(0, len(chunk), BATCH_ROWS):
            self._write(chunk[start:start + BATCH_ROWS])

    def encode(self, chunk: list[Record]) -> str:
        self.add(chunk)
        return self.take()

    def _write(self, chunk: list[Any]) -> None:
        if type(chunk[0]) is tuple:  # rows already in column order (a SQL source): check, then write them as they are
            by_column: list[Any] = list(zip(*chunk))  # noqa: B905 - rows of one query have one width
            dirty = [index for index, values in enumerate(by_column) if not _clean(values, self.neutralise)]
            if not dirty:
                self._writer.writerows(chunk)
                return
        else:
            by_column = _columns(chunk, self.columns, self._getters)
            dirty = [index for index, values in enumerate(by_column) if not _clean(values, self.neutralise)]
        for index in dirty:
            by_column[index] = [cell(value, self.neutralise) for value in by_column[index]]
        self._writer.writerows(zip(*by_column))  # noqa: B905 - columns of one chunk, equal by construction


def write_csv(
    records: Iterable[Record],
    columns: list[str],
    meta: Meta,
    out: Any,
    options: Mapping[str, Any],
    control: Control,
) -> WriteStats:
    """Write ``records`` as CSV to the binary stream ``out``: flushed and reported every ``chunk_rows`` rows."""
    chunk_rows = int(options.get("chunk_rows", 1000))
    encoder = CsvEncoder(columns, bool(options.get("neutralise_formulas", True)))
    # rows are made into text in memory and written a chunk at a time: no per-row call into ``out``
    out.write(encoder.header().encode())
    iterator = iter(records)
    batch = min(chunk_rows, BATCH_ROWS)
    written = reported = 0
    while chunk := list(islice(iterator, batch)):
        encoder.add(chunk)
        written += len(chunk)
        if written - reported >= chunk_rows:
            out.write(encoder.take().encode())
            out.flush()
            reported = written
            control.progress(written)
    out.write(encoder.take().encode())
    out.flush()
    if written != reported:
        control.progress(written)
    return WriteStats(records=written, extension="csv", content_type="text/csv; charset=utf-8")
