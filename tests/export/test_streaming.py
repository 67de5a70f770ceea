"""NDJSON bodies, and ``/export/stream``: CSV out while the input is still coming in."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json

import pytest

from tests.export.conftest import leftovers, poll_status

NDJSON = {"Content-Type": "application/x-ndjson"}


def ndjson(records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


async def test_ndjson_body_on_run_and_jobs(export_client, tmp_path):
    client = await export_client()
    body = ndjson({"id": i, "name": f"n{i}"} for i in range(2500))
    response = await client.post("/export/run?format=csv&columns=name,id&user=nd", data=body, headers=NDJSON)
    assert response.status == 200, await response.text()
    result = (await response.json())["result"]
    rows = list(csv.reader(io.StringIO((tmp_path / "exports" / result["filename"]).read_text())))
    assert rows[0] == ["name", "id"] and rows[-1] == ["n2499", "2499"] and len(rows) == 2501
    accepted = await client.post("/export/jobs?format=pdf&title=NDJSON", data=ndjson([{"a": 1}, {"a": 2}]),
                                 headers=NDJSON)
    assert accepted.status == 202
    assert (await accepted.json())["progress"]["records_total"] == 2


async def test_malformed_ndjson_is_a_400_naming_the_line_and_leaves_nothing(export_client, tmp_path):
    client = await export_client()
    cases = [
        (b'{"a": 1}\n{"a": 2\n{"a": 3}\n', "invalid_ndjson", "line 2"),
        (b'{"a": 1}\n\n[1, 2]\n', "invalid_record", "line 3"),
        (b'{"a": 1}\n\xff\xfe\n', "invalid_ndjson", "line 2"),
    ]
    for body, code, where in cases:
        response = await client.post("/export/run?format=csv", data=body, headers=NDJSON)
        assert response.status == 400
        error = (await response.json())["error"]
        assert error["code"] == code and where in error["message"]
    response = await client.post("/export/run?format=csv&sort=asc", data=b'{"a": 1}\n', headers=NDJSON)
    assert (await response.json())["error"]["code"] == "unknown_parameter"
    assert leftovers(tmp_path / "exports") == []
    assert (await (await client.get("/export/status")).json())["queueDepth"] == 0


async def test_stream_ndjson_to_csv(export_client):
    client = await export_client()
    body = ndjson({"id": i, "formula": "=1+1" if i == 3 else "ok"} for i in range(3001))
    response = await client.post("/export/stream?format=csv", data=body, headers=NDJSON)
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == ["id", "formula"] and len(rows) == 3002 and rows[4] == ["3", "'=1+1"]


async def test_stream_from_a_source_gzipped(export_client):
    client = await export_client()
    response = await client.post("/export/stream", json={"source": "synthetic", "params": {"records": 12000}},
                                 headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert response.status == 200 and response.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(await response.read()).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "id" and len(rows) == 12001


async def test_malformed_line_mid_stream_ends_with_an_error_line(export_client):
    client = await export_client()
    body = ndjson({"id": i} for i in range(1500)) + b"{oops\n" + ndjson([{"id": 9999}])
    response = await client.post("/export/stream?format=csv", data=body, headers=NDJSON)
    assert response.status == 200
    lines = (await response.text()).splitlines()
    assert lines[0] == "id" and lines[1500] == "1499"
    assert lines[-1].startswith("#error,")
    error = json.loads(lines[-1][len("#error,"):])
    assert error["code"] == "invalid_ndjson" and "line 1501" in error["message"]
    assert "9999" not in lines


async def test_first_bytes_go_out_before_the_input_is_fully_read(export_client):
    client = await export_client()
    first_bytes = asyncio.Event()

    async def body():
        yield b'{"id": 1, "name": "first"}\n'
        await first_bytes.wait()  # the rest is sent only once the server has answered with data
        for i in range(2, 2001):
            yield json.dumps({"id": i, "name": "later"}).encode() + b"\n"

    async def consume() -> list[str]:
        async with client.post("/export/stream?format=csv&columns=id,name", data=body(), headers=NDJSON) as response:
            assert response.status == 200
            received = await response.content.read(3)
            first_bytes.set()
            return (received + await response.read()).decode().splitlines()

    lines = await asyncio.wait_for(consume(), 60)
    assert lines[0] == "id,name" and lines[1] == "1,first" and len(lines) == 2001


async def test_stream_rejects_other_formats_and_bad_input(export_client):
    client = await export_client()
    response = await client.post("/export/stream?format=pdf", data=b'{"a":1}\n', headers=NDJSON)
    assert (await response.json())["error"]["code"] == "unknown_format"
    response = await client.post("/export/stream", data=b"a,b", headers={"Content-Type": "text/csv"})
    assert response.status == 415


async def test_client_gone_mid_stream_frees_the_slot(export_client):
    client = await export_client(max_concurrent=1)
    async with client.post("/export/stream", json={"source": "synthetic", "params": {"records": 5_000_000}}) as r:
        assert r.status == 200
        await r.content.read(100)
    # the connection is closed with most of the stream unread; the slot comes back
    await poll_status(client, lambda s: s["concurrentExports"] == 0)
    response = await client.post("/export/run", json={"format": "csv", "data": [{"a": 1}]})
    assert response.status == 200


@pytest.mark.parametrize("workers", ["process", "thread"])
async def test_stream_from_a_source_after_one_was_abandoned(export_client, workers):
    """A stream whose client left stops its worker at the next chunk: the same worker streams the next one."""
    client = await export_client(max_concurrent=1, workers=workers)
    async with client.post("/export/stream", json={"source": "synthetic", "params": {"records": 5_000_000}}) as r:
        await r.content.read(100)
    await poll_status(client, lambda s: s["concurrentExports"] == 0)
    response = await client.post("/export/stream", json={"source": "synthetic", "params": {"records": 30_000},
                                                          "columns": ["id", "symbol"]})
    lines = (await response.text()).splitlines()
    assert response.status == 200 and lines[0] == "id,symbol" and len(lines) == 30_001
    assert lines[-1].startswith("30000,")


async def test_stream_from_a_source_with_a_column_it_lacks_is_a_400(export_client):
    client = await export_client()
    response = await client.post("/export/stream", json={"source": "synthetic", "params": {"records": 10},
                                                          "columns": ["id", "nope"]})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_columns"


async def test_a_source_failing_mid_stream_ends_with_an_error_line(export_client):
    client = await export_client()
    response = await client.post("/export/stream", json={"source": "crumbling", "params": {"records": 25_000}})
    lines = (await response.text()).splitlines()
    assert response.status == 200 and lines[0] == "id,name" and lines[1] == "0,row 0"
    assert lines[-1].startswith("#error,")
    error = json.loads(lines[-1].removeprefix("#error,"))
    assert error["code"] == "source_error" and "disk went away" in error["message"]
    assert len(lines) - 2 <= 25_000  # what was encoded before the failure, never a row after it
    await poll_status(client, lambda s: s["concurrentExports"] == 0)
