"""Streamed CSV: RFC 4180, UTF-8, a header row, written in chunks; never the whole dataset in memory.

Values: ``None`` → empty, numbers as they are, ``True``/``False`` → ``true``/``false``, dates and datetimes
ISO 8601, nested values as JSON text. Text a spreadsheet would run as a formula (first character ``=``,
``+``, ``-``, ``@``, tab or CR) is prefixed with ``'``, unless it is a number such as ``-5``.
Columns are checked a chunk at a time with C-level operations; only a column that needs it is converted
cell by cell, which keeps the common case close to a bare ``csv.writer`` loop.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Mapping
from itertools import islice
from operator import itemgetter
from typing import Any

from .types import Control, Meta, Record, WriteStats

FORMULA_START = frozenset("=+-@\t\r")
_FORMULA_AFTER_SEP = re.compile("\x00[=+\\-@\t\r]")
_PLAIN_TYPES = frozenset({int, float, type(None)})
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


def _needs_cells(values: tuple[Any, ...], neutralise: bool) -> bool:
    """Whether a column of one chunk needs per-cell conversion (decided with C-level operations)."""
    kinds = set(map(type, values))
    if kinds <= _PLAIN_TYPES:
        return False
    if kinds <= _PLAIN_TYPES | {str}:
        if not neutralise:
            return False
        text = "\x00" + "\x00".join(v for v in values if type(v) is str)
        return _FORMULA_AFTER_SEP.search(text) is not None
    return True


def _rows(chunk: list[Record], columns: list[str], getter: Any) -> list[tuple[Any, ...]]:
    try:
        rows = list(map(getter, chunk))
    except (KeyError, TypeError):  # a record lacks a column: look each one up
        return [tuple(record.get(column) for column in columns) for record in chunk]
    return [(row,) for row in rows] if len(columns) == 1 else rows


def write_csv(
    records: Iterable[Record],
    columns: list[str],
    meta: Meta,
    out: Any,
    options: Mapping[str, Any],
    control: Control,
) -> WriteStats:
    """Write ``records`` as CSV to the binary stream ``out``, ``chunk_rows`` at a time."""
    chunk_rows = int(options.get("chunk_rows", 1000))
    neutralise = bool(options.get("neutralise_formulas", True))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([cell(c, neutralise) for c in columns])
    getter = itemgetter(*columns)
    iterator = iter(records)
    written = 0
    while True:
        chunk = list(islice(iterator, chunk_rows))
        if not chunk:
            break
        rows = _rows(chunk, columns, getter)
        by_column = list(zip(*rows))
        dirty = [i for i, values in enumerate(by_column) if _needs_cells(values, neutralise)]
        if dirty:
            for i in dirty:
                by_column[i] = tuple(cell(v, neutralise) for v in by_column[i])
            rows = list(zip(*by_column))
        writer.writerows(rows)
        out.write(buffer.getvalue().encode("utf-8"))
        buffer.seek(0)
        buffer.truncate()
        written += len(chunk)
        control.progress(written)
    if written == 0:
        out.write(buffer.getvalue().encode("utf-8"))
    return WriteStats(records=written, extension="csv", content_type="text/csv; charset=utf-8")
