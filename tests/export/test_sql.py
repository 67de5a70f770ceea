"""SQLite data sources: admin-defined queries, typed params, read-only, injection attempts inert."""

from __future__ import annotations

import csv
import io
import sqlite3

import pytest

import plugins.export as export
from host.testing import make_app, plugin_record


@pytest.fixture
def trades_db(tmp_path):
    path = tmp_path / "trades.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE trades (id INTEGER, symbol TEXT, qty INTEGER, ts TEXT)")
        db.executemany("INSERT INTO trades VALUES (?, ?, ?, ?)",
                       [(i, "AAPL" if i % 2 else "MSFT", i * 10, f"2026-01-{1 + i % 28:02d}") for i in range(1, 101)])
    return path


def sources(path, **extra):
    return {"trades": {"kind": "sqlite", "path": str(path),
                       "query": "SELECT id, symbol, qty FROM trades WHERE symbol = :symbol AND qty >= :min_qty "
                                "ORDER BY id",
                       "params": {"symbol": {"type": "str", "default": "AAPL"},
                                  "min_qty": {"type": "int", "default": 0}}, **extra}}


async def test_named_query_with_typed_params(export_client, trades_db, tmp_path):
    client = await export_client(sources=sources(trades_db))
    response = await client.post("/export/run", json={"format": "csv", "source": "trades",
                                                     "params": {"symbol": "MSFT", "min_qty": 500}})
    assert response.status == 200
    body = await response.json()
    rows = list(csv.reader(io.StringIO((tmp_path / "exports" / body["result"]["filename"]).read_text())))
    assert rows[0] == ["id", "symbol", "qty"]
    assert [int(r[0]) for r in rows[1:]] == list(range(50, 101, 2))
    defaults = await (await client.post("/export/stream", json={"source": "trades"})).text()
    assert len(defaults.splitlines()) == 51  # header + the 50 AAPL rows


@pytest.mark.parametrize(("params", "message"), [
    ({"symbol": 5}, "param 'symbol' must be a str, got 5"),
    ({"min_qty": "10"}, "param 'min_qty' must be a int, got '10'"),
    ({"sql": "DROP TABLE trades"}, "unknown param 'sql'"),
])
async def test_bad_params_are_400(export_client, trades_db, params, message):
    client = await export_client(sources=sources(trades_db))
    response = await client.post("/export/run", json={"format": "csv", "source": "trades", "params": params})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_params" and message in error["message"]


async def test_injection_attempts_are_bound_values(export_client, trades_db, tmp_path):
    client = await export_client(sources=sources(trades_db))
    for attempt in ("AAPL' OR '1'='1", "x'; DROP TABLE trades; --", "AAPL\" OR 1=1 --"):
        response = await client.post("/export/run", json={"format": "csv", "source": "trades",
                                                         "params": {"symbol": attempt}})
        body = await response.json()
        assert response.status == 200 and body["records"] == 0
    with sqlite3.connect(trades_db) as db:
        assert db.execute("SELECT count(*) FROM trades").fetchone() == (100,)


async def test_the_database_is_opened_read_only(export_client, trades_db):
    client = await export_client(sources={"writer": {
        "kind": "sqlite", "path": str(trades_db),
        "query": "WITH gone AS (SELECT 1) SELECT * FROM trades WHERE id = :id", "params": {"id": {"type": "int"}}}})
    response = await client.post("/export/run", json={"format": "csv", "source": "writer", "params": {}})
    assert (await response.json())["error"]["message"] == "param 'id' is required"
    from plugins.export.sql import open_sqlite

    spec = {"path": str(trades_db), "query": "DELETE FROM trades", "params": {}}
    with pytest.raises(sqlite3.OperationalError):
        list(open_sqlite(spec, {}).records)
    with sqlite3.connect(trades_db) as db:
        assert db.execute("SELECT count(*) FROM trades").fetchone() == (100,)


@pytest.mark.parametrize(("change", "problem"), [
    ({"kind": "postgres"}, "'kind' must be 'sqlite'"),
    ({"path": "/nowhere/db.sqlite"}, "'path' must be an existing SQLite file"),
    ({"query": "DELETE FROM trades"}, "'query' must be one SELECT"),
    ({"params": {"symbol": {"type": "str"}}}, "placeholders"),
    ({"params": {"symbol": {"type": "date"}, "min_qty": {"type": "int"}}}, "param 'symbol' must be a table"),
    ({"color": "red"}, "unknown key 'color'"),
])
async def test_bad_source_config_fails_the_plugin_at_config(aiohttp_client, trades_db, tmp_path, change, problem):
    config = sources(trades_db)
    config["trades"].update(change)
    app = await make_app({"plugins": {"export": {"dir": str(tmp_path / "x"), "sources": config}}},
                         plugins=[export])
    await aiohttp_client(app)
    rec = plugin_record(app, "export")
    assert (rec.status, rec.stage) == ("failed", "config")
    assert "plugins.export.sources: source 'trades': " in rec.error and problem in rec.error
