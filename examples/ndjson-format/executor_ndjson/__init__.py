"""An export format plugin: newline-delimited JSON (``"format": "ndjson"``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from host import hookimpl
from plugins.export.types import Control, ExportFormat, Meta, WriteStats

__version__ = "1.0.0"
requires = ["export"]
host_version = ">=0.1"


def _default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return str(value)


def write_ndjson(records: Iterable[Mapping[str, Any]], columns: list[str], meta: Meta, out: Any,
                 options: Mapping[str, Any], control: Control) -> WriteStats:
    """One JSON object a line, with the export's columns in order, ``chunk_rows`` records at a time."""
    chunk_rows = int(options.get("chunk_rows", 1000))
    encode = json.JSONEncoder(ensure_ascii=False, default=_default, separators=(",", ":")).encode
    iterator = iter(records)
    written = 0
    while chunk := list(islice(iterator, chunk_rows)):
        lines = [encode({column: record.get(column) for column in columns}) for record in chunk]
        out.write(("\n".join(lines) + "\n").encode("utf-8"))
        written += len(chunk)
        control.progress(written)
    return WriteStats(records=written, extension="ndjson", content_type="application/x-ndjson")


NDJSON = ExportFormat("ndjson", write_ndjson, "newline-delimited JSON, one record a line")


@hookimpl
def export_register_formats() -> list[ExportFormat]:
    return [NDJSON]
