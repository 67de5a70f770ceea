"""Reading and checking the body of ``POST /export/run``; every problem is a :class:`BadRequest`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .types import DataSource, ExportFormat

DEFAULT_TITLE = "Export Report"
DEFAULT_USER = "anonymous"
PARSE_IN_THREAD_BYTES = 1024 * 1024
KNOWN_FIELDS = frozenset({"format", "data", "columns", "title", "user", "source", "params"})


class BadRequest(Exception):
    """A request the export plugin refuses, with its HTTP status and error code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class ExportRequest:
    format: ExportFormat
    title: str
    user: str
    columns: list[str] | None
    records: list[dict[str, Any]] | None = None
    source: DataSource | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def records_total(self) -> int | None:
        if self.records is not None:
            return len(self.records)
        return self.params.get("records") if isinstance(self.params.get("records"), int) else None


async def read_json_body(request: web.Request, max_bytes: int) -> Any:
    """The parsed JSON body, read up to ``max_bytes`` (413 past it); big bodies parse off the loop."""
    content_type = request.content_type
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise BadRequest("unsupported_media_type",
                         f"Content-Type must be application/json, got {content_type or 'none'!r}", 415)
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadRequest("payload_too_large",
                         f"body of {request.content_length} bytes is over max_body_bytes={max_bytes}", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise BadRequest("payload_too_large", f"body is over max_body_bytes={max_bytes}", 413)
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        if size > PARSE_IN_THREAD_BYTES:
            return await asyncio.to_thread(json.loads, raw)
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("invalid_json", f"body is not valid JSON: {exc}") from None


def _text(body: Mapping[str, Any], key: str, default: str) -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadRequest(f"invalid_{key}", f"'{key}' must be a string, got {type(value).__name__}")
    return value


def parse_export_request(body: Any, formats: Mapping[str, ExportFormat],
                         sources: Mapping[str, DataSource]) -> ExportRequest:
    """Check a decoded body and build the :class:`ExportRequest`."""
    if not isinstance(body, dict):
        raise BadRequest("invalid_body", f"body must be a JSON object, got {type(body).__name__}")
    fmt_name = body.get("format", "csv")
    if fmt_name not in formats:
        raise BadRequest("unknown_format", f"unknown format {fmt_name!r} (known: {', '.join(sorted(formats))})")
    columns = body.get("columns")
    if columns is not None:
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise BadRequest("invalid_columns", "'columns' must be a list of strings")
        if not columns:
            columns = None
    request = ExportRequest(format=formats[fmt_name], title=_text(body, "title", DEFAULT_TITLE),
                            user=_text(body, "user", DEFAULT_USER), columns=columns)
    if "source" in body and body["source"] is not None:
        name = body["source"]
        if not isinstance(name, str) or name not in sources:
            raise BadRequest("unknown_source", f"unknown source {name!r} (known: {', '.join(sorted(sources))})")
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise BadRequest("invalid_params", f"'params' must be an object, got {type(params).__name__}")
        try:
            request.params = sources[name].check_params(params)
        except ValueError as exc:
            raise BadRequest("invalid_params", str(exc)) from None
        request.source = sources[name]
        return request
    if "data" not in body:
        raise BadRequest("missing_data", "give 'data' (an array of records) or 'source' (a data source name)")
    data = body["data"]
    if not isinstance(data, list):
        raise BadRequest("invalid_data", f"'data' must be an array of records, got {type(data).__name__}")
    for index, record in enumerate(data):
        if type(record) is not dict:
            raise BadRequest("invalid_record", f"data[{index}] must be an object, got {type(record).__name__}")
    request.records = data
    return request
