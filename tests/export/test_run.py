"""``POST /export/run`` as the original clients use it, and every class of bad request."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest

from host.testing import sample_value
from tests.export.conftest import leftovers

SEED_BATCH = [("csv", 1000), ("csv", 5000), ("csv", 10000), ("pdf", 1000), ("pdf", 5000)]


def records(count: int) -> list[dict]:
    return [{"id": i, "name": f"User {i}", "email": f"user{i}@example.com", "amount": round(i * 1.37, 2),
             "created": "2026-12-03T10:00:00Z"} for i in range(count)]


async def test_original_seed_batch_and_assert_script_fields(export_client, tmp_path):
    client = await export_client(max_concurrent=5, with_helpers=False)
    for fmt, count in SEED_BATCH:
        response = await client.post("/export/run", json={
            "format": fmt, "data": records(count), "columns": ["id", "name", "email", "amount", "created"],
            "title": f"Seed {fmt} {count}", "user": "seed-script"})
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["success"] is True and body["result"]["success"] is True
        assert body["records"] == body["result"]["records"] == count
        assert isinstance(body["processingTime"], (int, float)) and body["processingTime"] > 0
        assert body["timestamp"].endswith("Z")
        path = tmp_path / "exports" / body["result"]["filename"]
        assert path.stat().st_size == body["result"]["bytes"] > 0
        assert hashlib.sha256(path.read_bytes()).hexdigest() == body["result"]["sha256"]
        assert body["job"]["status"] == "succeeded"
        if fmt == "csv":
            rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
            assert len(rows) == count + 1
    metrics = await (await client.get("/export/metrics")).text()
    for name in ("export_requests_total", "export_latency_ms_bucket", "export_bytes_total",
                 "export_concurrent_running", "export_queue_depth", "export_fail_total", "export_memory_bytes",
                 "export_throughput_ops_per_sec", "export_success_rate"):
        assert name in metrics
    assert 'export_success_rate{format="csv"} 1.0' in metrics
    assert "export_concurrent_running 0.0" in metrics and "export_queue_depth 0.0" in metrics
    assert sample_value(client.app, "export_bytes_total", {"format": "csv", "status": "success"}) > 0


async def test_defaults_columns_title_user(export_client, tmp_path):
    client = await export_client()
    body = await (await client.post("/export/run", json={"format": "csv", "data": [{"b": 1, "a": 2}]})).json()
    text = (tmp_path / "exports" / body["result"]["filename"]).read_text()
    assert text.splitlines()[0] == "b,a"
    assert sample_value(client.app, "export_requests_total",
                        {"format": "csv", "status": "succeeded", "user": "anonymous"}) == 1


async def test_synthetic_source_is_deterministic(export_client, tmp_path):
    client = await export_client()
    digests = []
    for _ in range(2):
        body = await (await client.post("/export/run", json={
            "format": "csv", "source": "synthetic", "params": {"records": 2500, "seed": 7}})).json()
        assert body["records"] == 2500
        digests.append(hashlib.sha256((tmp_path / "exports" / body["result"]["filename"]).read_bytes()).hexdigest())
        header = (tmp_path / "exports" / body["result"]["filename"]).read_text().splitlines()[0]
        assert header == "id,timestamp,symbol,side,qty,price,pnl,status"
    assert digests[0] == digests[1]


@pytest.mark.parametrize(("body", "code"), [
    ({"format": "csv"}, "missing_data"),
    ({"format": "csv", "data": {"a": 1}}, "invalid_data"),
    ({"format": "csv", "data": "rows"}, "invalid_data"),
    ({"format": "xlsx", "data": []}, "unknown_format"),
    ({"format": "csv", "data": [], "columns": "id,name"}, "invalid_columns"),
    ({"format": "csv", "data": [], "columns": ["id", 2]}, "invalid_columns"),
    ({"format": "csv", "data": [{"a": 1}, 5]}, "invalid_record"),
    ({"format": "csv", "data": [], "title": 5}, "invalid_title"),
    ({"format": "csv", "data": [], "user": ["x"]}, "invalid_user"),
    ({"format": "csv", "source": "nowhere"}, "unknown_source"),
    ({"format": "csv", "source": "synthetic", "params": {"records": -1}}, "invalid_params"),
    ({"format": "csv", "source": "synthetic", "params": {"rows": 5}}, "invalid_params"),
    ({"format": "csv", "source": "synthetic", "params": [1]}, "invalid_params"),
    ([1, 2], "invalid_body"),
])
async def test_each_invalid_class_is_a_400_with_the_error_object(export_client, body, code):
    client = await export_client(with_helpers=False)
    response = await client.post("/export/run", json=body)
    assert response.status == 400
    payload = await response.json()
    assert payload["success"] is False
    assert payload["error"]["code"] == code and payload["error"]["message"]
    assert sample_value(client.app, "export_requests_total",
                        {"format": "csv", "status": "started", "user": "anonymous"}) is None


async def test_broken_json_wrong_type_and_oversized_bodies(export_client):
    client = await export_client(max_body_bytes=2000, with_helpers=False)
    response = await client.post("/export/run", data=b'{"format": "csv", "data": [',
                                 headers={"Content-Type": "application/json"})
    assert (response.status, (await response.json())["error"]["code"]) == (400, "invalid_json")
    response = await client.post("/export/run", data=b"format=csv", headers={"Content-Type": "text/plain"})
    assert (response.status, (await response.json())["error"]["code"]) == (415, "unsupported_media_type")
    response = await client.post("/export/run", json={"format": "csv", "data": records(100)})
    assert (response.status, (await response.json())["error"]["code"]) == (413, "payload_too_large")
    assert (await client.get("/health")).status == 200


async def test_a_failing_export_is_a_500_and_is_counted(export_client, tmp_path):
    client = await export_client()
    response = await client.post("/export/run", json={"format": "boom", "data": [{"a": 1}], "user": "eve"})
    assert response.status == 500
    body = await response.json()
    assert body["success"] is False
    assert body["error"] == {"code": "render_error", "message": "RuntimeError: renderer exploded"}
    assert body["job"]["status"] == "failed"
    app = client.app
    assert sample_value(app, "export_fail_total", {"reason": "render_error", "format": "boom"}) == 1
    assert sample_value(app, "export_requests_total", {"format": "boom", "status": "failed", "user": "eve"}) == 1
    assert sample_value(app, "export_bytes_total", {"format": "boom", "status": "error"}) == 33
    assert sample_value(app, "export_success_rate", {"format": "boom"}) == 0.0
    assert leftovers(tmp_path / "exports") == []  # no partial file, no spooled input left behind


async def test_metric_values_after_known_exports(export_client):
    client = await export_client(metrics={"max_user_labels": 2, "success_window": 4})
    app = client.app
    for user, count in (("ana", 10), ("ben", 2000), ("cem", 20000)):
        response = await client.post("/export/run", json={"format": "csv", "source": "synthetic",
                                                         "params": {"records": count}, "user": user})
        assert response.status == 200
    await client.post("/export/run", json={"format": "boom", "data": [{"a": 1}], "user": "ana"})
    started = {"format": "csv", "status": "started"}
    assert sample_value(app, "export_requests_total", {**started, "user": "ana"}) == 1
    assert sample_value(app, "export_requests_total", {**started, "user": "ben"}) == 1
    assert sample_value(app, "export_requests_total", {**started, "user": "other"}) == 1  # capped at 2 users
    for size in ("small", "medium", "large"):
        assert sample_value(app, "export_latency_ms_count", {"format": "csv", "size": size}) == 1
    assert sample_value(app, "export_success_rate", {"format": "csv"}) == 1.0
    assert sample_value(app, "export_throughput_ops_per_sec", {"format": "csv"}) > 0
    assert sample_value(app, "export_memory_bytes", {"format": "csv"}) > 10 * 1024 * 1024
    assert sample_value(app, "export_concurrent_running") == 0
    assert sample_value(app, "export_queue_depth") == 0


async def test_status_endpoint(export_client):
    client = await export_client(max_concurrent=3, max_queue=7)
    body = await (await client.get("/export/status")).json()
    assert body["status"] == "ready"
    assert (body["concurrentExports"], body["queueDepth"]) == (0, 0)
    assert (body["maxConcurrentExports"], body["maxQueue"]) == (3, 7)
    assert body["version"] and body["timestamp"]


async def test_integers_past_64_bits_come_through_exactly(export_client, tmp_path):
    """JSON has no integer limit: a value the fast parser refuses is read by the exact one."""
    client = await export_client()
    big = 2**70 + 1
    response = await client.post("/export/run", json={"format": "csv", "data": [{"id": big, "n": -big}, {"id": 1}]})
    body = await response.json()
    assert response.status == 200 and body["result"]["records"] == 2
    text = (tmp_path / "exports" / body["result"]["filename"]).read_text()
    assert text.splitlines()[1] == f"{big},{-big}"


async def test_a_column_the_source_lacks_is_a_400(export_client, tmp_path):
    client = await export_client()
    response = await client.post("/export/run", json={"format": "csv", "source": "synthetic",
                                                      "params": {"records": 5}, "columns": ["id", ""]})
    body = await response.json()
    assert response.status == 400 and body["error"]["code"] == "invalid_columns"
    assert "''" in body["error"]["message"]
    assert [p.name for p in (tmp_path / "exports").iterdir() if p.name.startswith("export-")] == []


def big_csv_body(records: int = 12_000, **fields) -> bytes:
    """A body over 1 MiB that opens with "format": "csv": rendered while the server still checks it."""
    data = [{"id": i, "name": f"row {i} " + "x" * 80, "qty": i % 7} for i in range(records)]
    body = json.dumps({"format": "csv", "data": data, **fields}).encode()
    assert len(body) > 1024 * 1024
    return body


async def test_a_big_body_renders_while_it_is_checked(export_client, tmp_path):
    client = await export_client()
    response = await client.post("/export/run", data=big_csv_body(columns=["qty", "id"], title="Big one"),
                                 headers={"Content-Type": "application/json"})
    body = await response.json()
    assert response.status == 200 and body["result"]["records"] == 12_000
    lines = (tmp_path / "exports" / body["result"]["filename"]).read_text().splitlines()
    assert lines[0] == "qty,id" and lines[1] == "0,0" and lines[-1] == "1,11999"
    job = await (await client.get(body["job"]["url"])).json()
    assert (job["format"], job["title"], job["status"]) == ("csv", "Big one", "succeeded")


@pytest.mark.parametrize(("tail", "code"), [
    (b', "data": [{"a": 1}]}', "duplicate_key"),
    (b', "extra": NaN}', "invalid_json"),
    (b', "title": 5}', "invalid_title"),
])
async def test_a_big_body_that_fails_its_check_leaves_nothing(export_client, tmp_path, tail, code):
    client = await export_client()
    raw = big_csv_body()[:-1] + tail
    response = await client.post("/export/run", data=raw, headers={"Content-Type": "application/json"})
    assert response.status == 400 and (await response.json())["error"]["code"] == code
    assert leftovers(tmp_path / "exports") == []  # no file, partial file or spooled body
    assert (await (await client.get("/export/jobs")).json())["jobs"] == []
    status = await (await client.get("/export/status")).json()
    assert status["concurrentExports"] == 0 and status["queueDepth"] == 0


async def test_a_big_csv_body_naming_a_source_goes_the_usual_way(export_client, tmp_path):
    client = await export_client()
    raw = json.dumps({"format": "csv", "title": "t" * (1024 * 1024), "source": "synthetic",
                      "params": {"records": 25}}).encode()
    response = await client.post("/export/run", data=raw, headers={"Content-Type": "application/json"})
    body = await response.json()
    assert response.status == 200 and body["result"]["records"] == 25
    assert len((await (await client.get("/export/jobs")).json())["jobs"]) == 1
