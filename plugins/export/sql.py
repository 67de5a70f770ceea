"""The ``sqlite`` source kind: named, admin-defined queries; clients pass only the name and typed params.

    [plugins.export.sources.trades]
    kind = "sqlite"
    path = "/data/trades.db"
    query = "SELECT * FROM trades WHERE ts >= :since AND qty >= :min_qty"
    params = { since = { type = "str", default = "1970-01-01" }, min_qty = { type = "int", default = 0 } }

The database is opened read-only (``mode=ro`` and ``PRAGMA query_only``); parameters are bound, never
spliced into the SQL; rows are streamed with ``fetchmany``.
"""

from __future__ import annotations

import re
import sqlite3
import urllib.parse
from collections.abc import Iterator, Mapping
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any

from .types import DataSource, SourceRecords

FETCH_ROWS = 1000
PARAM_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def check_sources(sources: Mapping[str, Any]) -> str | None:
    """The config check of ``[plugins.export.sources]``: a problem, or None when every source is sound."""
    for name, spec in sources.items():
        problem = _source_problem(spec)
        if problem:
            return f"source {name!r}: {problem}"
    return None


def _source_problem(spec: Any) -> str | None:
    if not isinstance(spec, Mapping):
        return "must be a table"
    unknown = sorted(set(spec) - {"kind", "path", "query", "params", "description"})
    if unknown:
        return f"unknown key {unknown[0]!r} (known: kind, path, query, params, description)"
    if spec.get("kind") != "sqlite":
        return f"'kind' must be 'sqlite', got {spec.get('kind')!r}"
    if not isinstance(spec.get("path"), str) or not Path(spec["path"]).is_file():
        return f"'path' must be an existing SQLite file, got {spec.get('path')!r}"
    query = spec.get("query")
    if not isinstance(query, str) or not query.lstrip().upper().startswith(("SELECT", "WITH")):
        return "'query' must be one SELECT (or WITH ... SELECT) statement"
    params = spec.get("params", {})
    if not isinstance(params, Mapping):
        return "'params' must be a table"
    for param, declared in params.items():
        if not isinstance(declared, Mapping) or declared.get("type") not in PARAM_TYPES:
            return f"param {param!r} must be a table with type = one of {', '.join(PARAM_TYPES)}"
        if "default" in declared and _convert(declared["type"], declared["default"]) is None:
            return f"param {param!r}: default {declared['default']!r} is not a {declared['type']}"
    placeholders = set(_PLACEHOLDER.findall(query))
    if placeholders != set(params):
        return (f"the query's placeholders {sorted(placeholders)} and the declared params {sorted(params)} "
                "must be the same")
    return None


def _convert(kind: str, value: Any) -> Any:
    expected = PARAM_TYPES[kind]
    if kind == "float" and type(value) is int:
        return float(value)
    return value if type(value) is expected else None


def check_sql_params(spec: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Typed params with their defaults; ``ValueError`` names the param that does not fit."""
    declared = spec.get("params", {})
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ValueError(f"unknown param {unknown[0]!r} (known: {', '.join(sorted(declared)) or 'none'})")
    checked: dict[str, Any] = {}
    for name, decl in declared.items():
        if name in params:
            value = _convert(decl["type"], params[name])
            if value is None:
                raise ValueError(f"param {name!r} must be a {decl['type']}, got {params[name]!r}")
            checked[name] = value
        elif "default" in decl:
            checked[name] = decl["default"]
        else:
            raise ValueError(f"param {name!r} is required")
    return checked


def _batches(cursor: sqlite3.Cursor, connection: sqlite3.Connection) -> Iterator[list[tuple[Any, ...]]]:
    try:
        while rows := cursor.fetchmany(FETCH_ROWS):
            yield rows
    finally:
        connection.close()


def open_sqlite(spec: Mapping[str, Any], params: Mapping[str, Any]) -> SourceRecords:
    checked = check_sql_params(spec, params)
    uri = f"file:{urllib.parse.quote(str(Path(spec['path']).resolve()))}?mode=ro"
    connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
    connection.execute("PRAGMA query_only = ON")
    cursor = connection.execute(spec["query"], checked)
    columns = [description[0] for description in cursor.description]
    batches = _batches(cursor, connection)
    return SourceRecords(columns, chain.from_iterable(batches), None, tuples=True, batches=batches)


def sql_sources(configured: Mapping[str, Mapping[str, Any]]) -> list[DataSource]:
    """A :class:`DataSource` for each configured query (checked at boot by :func:`check_sources`)."""
    return [DataSource(name, partial(check_sql_params, dict(spec)), partial(open_sqlite, dict(spec)),
                       str(spec.get("description", f"SQLite query on {spec['path']}")))
            for name, spec in configured.items()]
