"""Hostile input gets a clear 4xx, files are reached only by job id, and a full disk fails cleanly."""

from __future__ import annotations

import json
import os

import pytest

from host.testing import sample_value
from plugins.export.routes import SERVICE
from tests.export.conftest import leftovers, poll_job

LIMITS = {"limits": {"max_records": 50, "max_columns": 5, "max_cell_chars": 20, "max_depth": 3}}


@pytest.mark.parametrize(("body", "code"), [
    (b'{"format": "csv", "data": [{"a": NaN}]}', "invalid_json"),
    (b'{"format": "csv", "data": [{"a": Infinity}]}', "invalid_json"),
    (b'{"format": "csv", "data": [{"a": 1, "a": 2}]}', "duplicate_key"),
    (b'{"format": "csv", "format": "pdf", "data": []}', "duplicate_key"),
    (b'{"format": "csv", "data": [{"a": "\xff\xfe"}]}', "invalid_json"),
    (json.dumps({"format": "csv", "data": [{"a": i} for i in range(51)]}).encode(), "too_many_records"),
    (json.dumps({"format": "csv", "data": [{str(k): k for k in range(6)}]}).encode(), "too_many_columns"),
    (json.dumps({"format": "csv", "data": [], "columns": list("abcdef")}).encode(), "too_many_columns"),
    (json.dumps({"format": "csv", "data": [{"a": "x" * 21}]}).encode(), "cell_too_long"),
    (json.dumps({"format": "csv", "data": [{"a": [[[["deep"]]]]}]}).encode(), "too_deep"),
    (b'{"format": "csv", "data": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "too_deep"),
    (json.dumps({"format": "csv", "data": [], "callback": "x"}).encode(), "unknown_field"),
])
async def test_hostile_json_bodies_get_a_clear_400(export_client, tmp_path, body, code):
    client = await export_client(**LIMITS)
    response = await client.post("/export/run", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400, await response.text()
    assert (await response.json())["error"]["code"] == code
    assert leftovers(tmp_path / "exports") == []
    assert (await client.get("/health")).status == 200


@pytest.mark.parametrize(("body", "code"), [
    (b'{"a": NaN}\n', "invalid_ndjson"),
    (b'{"a": 1, "a": 1}\n', "duplicate_key"),
    (b'{"a": "' + b"y" * 30 + b'"}\n', "cell_too_long"),
    (b"".join(b'{"n": %d}\n' % i for i in range(51)), "too_many_records"),
])
async def test_hostile_ndjson_gets_a_clear_400(export_client, tmp_path, body, code):
    client = await export_client(**LIMITS)
    response = await client.post("/export/jobs?format=csv", data=body, headers={"Content-Type": "application/x-ndjson"})
    assert response.status == 400 and (await response.json())["error"]["code"] == code
    assert leftovers(tmp_path / "exports") == []


async def test_wrong_content_type_and_query_parameters(export_client):
    client = await export_client()
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}, {}):
        response = await client.post("/export/run", data=b'{"format": "csv", "data": []}', headers=headers)
        assert response.status == 415 and (await response.json())["error"]["code"] == "unsupported_media_type"
    response = await client.post("/export/run?debug=1", json={"format": "csv", "data": []})
    assert response.status == 400 and (await response.json())["error"]["code"] == "unknown_parameter"


async def test_a_full_disk_fails_the_job_cleanly(export_client, tmp_path):
    client = await export_client()
    response = await client.post("/export/run", json={"format": "fulldisk", "data": [{"a": 1}]})
    assert response.status == 500
    body = await response.json()
    assert body["error"]["code"] == "disk_full"
    job = await poll_job(client, body["job"]["url"])
    assert job["status"] == "failed" and job["error"]["code"] == "disk_full"
    assert sample_value(client.app, "export_fail_total", {"reason": "disk_full", "format": "fulldisk"}) == 1
    assert leftovers(tmp_path / "exports") == []
    assert (await client.get("/health")).status == 200
    assert (await client.post("/export/run", json={"format": "csv", "data": [{"a": 1}]})).status == 200


async def test_files_are_reached_only_by_job_id_never_outside_the_dir(export_client, tmp_path):
    client = await export_client()
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    for attempt in ("/export/jobs/..%2F..%2Fsecret.txt/download", "/export/jobs/%2Fetc%2Fpasswd/download",
                    "/export/jobs/../../secret.txt/download"):
        response = await client.get(attempt)
        assert response.status == 404 and "not yours" not in await response.text()
    body = await (await client.post("/export/run", json={"format": "csv", "data": [{"a": 1}]})).json()
    path = tmp_path / "exports" / body["result"]["filename"]
    assert oct(os.stat(tmp_path / "exports").st_mode & 0o777) == "0o700"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    path.unlink()
    path.symlink_to(secret)  # someone swaps the file for a link to something else
    response = await client.get(body["job"]["download"])
    assert response.status == 410 and "not yours" not in await response.text()
    service = client.app[SERVICE]
    job = service.jobs.get(body["job"]["id"])
    job.filename = "../secret.txt"
    assert service.file_of(job) is None
