"""Reading and checking the body of ``POST /export/run``; every problem is a :class:`BadRequest`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from typing import Any

from aiohttp import web

from .types import DataSource, ExportFormat

DEFAULT_TITLE = "Export Report"
DEFAULT_USER = "anonymous"
PARSE_IN_THREAD_BYTES = 1024 * 1024
KNOWN_FIELDS = frozenset({"format", "data", "columns", "title", "user", "source", "params"})


@dataclass(frozen=True)
class Limits:
    """What one export request may hold; each limit defends memory, disk or a reader of the file."""

    max_records: int = 10_000_000
    max_columns: int = 1000
    max_cell_chars: int = 32_767
    max_depth: int = 16


class DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise DuplicateKey(f"duplicate key {duplicate!r} in one object")
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(data: bytes | str) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys (a key given twice is ambiguous, so it is refused)."""
    return json.loads(data, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)


def _depth(value: Any, limit: int, depth: int = 1) -> bool:
    """Whether ``value`` nests deeper than ``limit``."""
    if depth > limit:
        return True
    children = value.values() if type(value) is dict else value
    return any(_depth(child, limit, depth + 1) for child in children if type(child) in (dict, list))


def check_record(record: Any, where: str, limits: Limits) -> None:
    """One record against the limits; a :class:`BadRequest` naming where it is."""
    if type(record) is not dict:
        raise BadRequest("invalid_record", f"{where} must be an object, got {type(record).__name__}")
    if len(record) > limits.max_columns:
        raise BadRequest("too_many_columns", f"{where} has {len(record)} keys, over max_columns={limits.max_columns}")
    for key, value in record.items():
        kind = type(value)
        if kind is str:
            if len(value) > limits.max_cell_chars:
                raise BadRequest("cell_too_long", f"{where}.{key} has {len(value)} characters, over "
                                                  f"max_cell_chars={limits.max_cell_chars}")
        elif (kind is dict or kind is list) and _depth(value, limits.max_depth):
            raise BadRequest("too_deep", f"{where}.{key} nests deeper than max_depth={limits.max_depth}")


def check_records(data: list[Any], limits: Limits) -> None:
    """Every record against the limits: flat records in a few C-level passes over all of them; nested ones,
    or any that breaks a limit, record by record (which names the first bad one)."""
    if data and set(map(type, data)) == {dict} and max(map(len, data)) <= limits.max_columns:
        values = list(chain.from_iterable(map(dict.values, data)))
        kinds = set(map(type, values))
        if dict not in kinds and list not in kinds:
            texts = list(compress(values, map(isinstance, values, repeat(str))))
            if max(map(len, texts), default=0) <= limits.max_cell_chars:
                return
    for index, record in enumerate(data):
        check_record(record, f"data[{index}]", limits)


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


def check_content_type(request: web.Request, allowed: tuple[str, ...]) -> str:
    """The body's media type when it is one of ``allowed`` (``+json`` counts as JSON), else 415."""
    content_type = request.content_type
    if content_type.endswith("+json"):
        content_type = "application/json"
    if content_type not in allowed:
        raise BadRequest("unsupported_media_type",
                         f"Content-Type must be {' or '.join(allowed)}, got {request.content_type or 'none'!r}", 415)
    return content_type


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The body, read up to ``max_bytes`` (413 past it)."""
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
    return b"".join(chunks)


async def parse_json_body(raw: bytes) -> Any:
    """A body's JSON, strictly (:func:`loads`); a big body parses off the event loop."""
    try:
        if len(raw) > PARSE_IN_THREAD_BYTES:
            return await asyncio.to_thread(loads, raw)
        return loads(raw)
    except DuplicateKey as exc:
        raise BadRequest("duplicate_key", f"body is ambiguous: {exc}") from None
    except RecursionError:
        raise BadRequest("too_deep", "body nests too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("invalid_json", f"body is not valid JSON: {exc}") from None


async def read_json_body(request: web.Request, max_bytes: int) -> tuple[bytes, Any]:
    """The body and its parsed JSON, read up to ``max_bytes`` (413 past it); big bodies parse off the loop."""
    raw = await read_body(request, max_bytes)
    return raw, await parse_json_body(raw)


async def ndjson_lines(request: web.Request, max_line_bytes: int) -> AsyncIterator[list[tuple[int, bytes]]]:
    """``(line number, line)`` pairs of an NDJSON body, a list for each piece of the body as it arrives
    (so a slow sender's lines are seen at once); blank lines are skipped."""
    pending = b""
    number = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) > max_line_bytes:
            raise BadRequest("line_too_long", f"line {number + len(lines) + 1} is over {max_line_bytes} bytes")
        found = []
        for line in lines:
            number += 1
            if line.strip():
                found.append((number, line))
        if found:
            yield found
    if pending.strip():
        yield [(number + 1, pending)]


def ndjson_record(number: int, line: bytes, limits: Limits) -> dict[str, Any]:
    """One NDJSON line as a record, or a :class:`BadRequest` naming the line."""
    try:
        record = loads(line)
    except DuplicateKey as exc:
        raise BadRequest("duplicate_key", f"line {number} is ambiguous: {exc}") from None
    except RecursionError:
        raise BadRequest("too_deep", f"line {number} nests too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("invalid_ndjson", f"line {number} is not valid JSON: {exc}") from None
    if type(record) is not dict:
        raise BadRequest("invalid_record", f"line {number} must be a JSON object, got {type(record).__name__}")
    check_record(record, f"line {number}", limits)
    if number > limits.max_records:
        raise BadRequest("too_many_records", f"more than max_records={limits.max_records} lines")
    return record


def query_request(query: Mapping[str, str], formats: Mapping[str, ExportFormat],
                  limits: Limits = Limits()) -> ExportRequest:
    """The export options of an NDJSON request, from its query string."""
    unknown = sorted(set(query) - {"format", "columns", "title", "user"})
    if unknown:
        raise BadRequest("unknown_parameter", f"unknown query parameter {unknown[0]!r} "
                                              "(known: format, columns, title, user)")
    body: dict[str, Any] = {key: query[key] for key in ("format", "title", "user") if key in query}
    if "columns" in query:
        body["columns"] = [c.strip() for c in query["columns"].split(",") if c.strip()]
    body["data"] = []
    request = parse_export_request(body, formats, {}, limits)
    request.records = None
    return request


def _text(body: Mapping[str, Any], key: str, default: str) -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadRequest(f"invalid_{key}", f"'{key}' must be a string, got {type(value).__name__}")
    return value


def parse_export_request(body: Any, formats: Mapping[str, ExportFormat], sources: Mapping[str, DataSource],
                         limits: Limits = Limits()) -> ExportRequest:
    """Check a decoded body and build the :class:`ExportRequest`."""
    if not isinstance(body, dict):
        raise BadRequest("invalid_body", f"body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        raise BadRequest("unknown_field", f"unknown field {unknown[0]!r} (known: {', '.join(sorted(KNOWN_FIELDS))})")
    fmt_name = body.get("format", "csv")
    if not isinstance(fmt_name, str) or fmt_name not in formats:
        raise BadRequest("unknown_format", f"unknown format {fmt_name!r} (known: {', '.join(sorted(formats))})")
    columns = body.get("columns")
    if columns is not None:
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise BadRequest("invalid_columns", "'columns' must be a list of strings")
        if len(columns) > limits.max_columns:
            raise BadRequest("too_many_columns", f"{len(columns)} columns, over max_columns={limits.max_columns}")
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
    if len(data) > limits.max_records:
        raise BadRequest("too_many_records", f"{len(data)} records, over max_records={limits.max_records}")
    check_records(data, limits)
    request.records = data
    return request
