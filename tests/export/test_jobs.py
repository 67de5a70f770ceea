"""The jobs API: accept, poll, download with Range / ETag / digest, cancel, delete, pages, retention."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import os
import time

from plugins.export.routes import SERVICE
from tests.export.conftest import leftovers, poll_job, poll_status
from tests.export.helpers import make_gate, release


async def finished_job(client, body: dict) -> dict:
    response = await client.post("/export/jobs", json=body)
    assert response.status == 202
    job = await response.json()
    assert response.headers["Location"] == job["url"] == f"/export/jobs/{job['id']}"
    return await poll_job(client, job["url"])


async def test_job_lifecycle_and_download_headers(export_client, tmp_path):
    client = await export_client()
    job = await finished_job(client, {"format": "csv", "source": "synthetic", "params": {"records": 3000},
                                      "title": "Çeyrek raporu", "user": "ayşe"})
    assert job["status"] == "succeeded" and job["progress"] == {"records_written": 3000, "records_total": 3000}
    for key in ("created_at", "started_at", "finished_at", "sha256", "filename", "download"):
        assert job[key]
    path = tmp_path / "exports" / job["filename"]
    content = path.read_bytes()
    assert hashlib.sha256(content).hexdigest() == job["sha256"] and len(content) == job["bytes"]

    full = await client.get(job["download"])
    assert full.status == 200 and await full.read() == content
    assert full.headers["Content-Disposition"] == (f'attachment; filename="{job["filename"]}"; '
                                                  f"filename*=UTF-8''{job['filename']}")
    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    assert full.headers["Repr-Digest"] == f"sha-256=:{digest}:"
    assert full.headers["ETag"] and full.headers["Last-Modified"]

    ranged = await client.get(job["download"], headers={"Range": "bytes=100-199"})
    assert ranged.status == 206 and await ranged.read() == content[100:200]
    assert ranged.headers["Content-Range"] == f"bytes 100-199/{len(content)}"
    resumed = await client.get(job["download"], headers={"Range": f"bytes={len(content) - 10}-"})
    assert resumed.status == 206 and await resumed.read() == content[-10:]
    beyond = await client.get(job["download"], headers={"Range": f"bytes={len(content) + 5}-"})
    assert beyond.status == 416
    cached = await client.get(job["download"], headers={"If-None-Match": full.headers["ETag"]})
    assert cached.status == 304


async def test_unknown_job_is_a_json_404(export_client):
    client = await export_client()
    for url in ("/export/jobs/nope", "/export/jobs/nope/download"):
        response = await client.get(url)
        assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"


async def test_cancelling_a_running_job_frees_its_slot_and_removes_the_partial_file(export_client, tmp_path):
    client = await export_client(max_concurrent=1)
    gate = make_gate(tmp_path, "forever")
    running = await (await client.post("/export/jobs", json={
        "format": "csv", "source": "gated", "params": {"gate": gate}})).json()
    queued = await (await client.post("/export/jobs", json={"format": "csv", "data": [{"a": 1}]})).json()
    await poll_status(client, lambda s: s["concurrentExports"] == 1 and s["queueDepth"] == 1)
    deleted = await (await client.delete(running["url"])).json()
    assert deleted["status"] == "cancelled" and deleted["error"]["code"] == "cancelled"
    done = await poll_job(client, queued["url"])  # the freed slot runs the next job
    assert done["status"] == "succeeded"
    await poll_status(client, lambda s: s["concurrentExports"] == 0)
    assert leftovers(tmp_path / "exports") == [done["filename"]]


async def test_cancelling_a_queued_job_never_runs_it(export_client, tmp_path):
    client = await export_client(max_concurrent=1)
    gate = make_gate(tmp_path, "hold")
    holder = await (await client.post("/export/jobs", json={
        "format": "csv", "source": "gated", "params": {"gate": gate}})).json()
    queued = await (await client.post("/export/jobs", json={"format": "csv", "data": [{"a": 1}]})).json()
    await poll_status(client, lambda s: s["queueDepth"] == 1)
    cancelled = await (await client.delete(queued["url"])).json()
    assert cancelled["status"] == "cancelled" and cancelled["started_at"] is None
    await asyncio.to_thread(release, gate)
    assert (await poll_job(client, holder["url"]))["status"] == "succeeded"
    assert (await (await client.get(queued["url"])).json())["status"] == "cancelled"


async def test_deleting_a_finished_job_removes_its_file(export_client, tmp_path):
    client = await export_client()
    job = await finished_job(client, {"format": "csv", "data": [{"a": 1}]})
    deleted = await (await client.delete(job["url"])).json()
    assert deleted["status"] == "expired"
    assert not (tmp_path / "exports" / job["filename"]).exists()
    gone = await client.get(f"{job['url']}/download")
    assert gone.status == 410 and (await gone.json())["error"]["code"] == "gone"


async def test_pages_newest_first_with_cursor_and_status(export_client):
    client = await export_client()
    ids = [(await finished_job(client, {"format": "csv", "data": [{"n": n}]}))["id"] for n in range(5)]
    failed = await finished_job(client, {"format": "boom", "data": [{"n": 1}]})
    seen, cursor = [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(f"/export/jobs?{query}")).json()
        assert len(page["jobs"]) <= 2
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [failed["id"], *reversed(ids)]
    only_failed = await (await client.get("/export/jobs?status=failed")).json()
    assert [job["id"] for job in only_failed["jobs"]] == [failed["id"]]
    for query, code in (("limit=0", "invalid_limit"), ("status=done", "invalid_status"), ("cursor=x", "invalid_cursor"),
                        ("sort=asc", "unknown_parameter")):
        response = await client.get(f"/export/jobs?{query}")
        assert response.status == 400 and (await response.json())["error"]["code"] == code


async def test_retention_by_age_and_total_size_expires_jobs(export_client, tmp_path):
    client = await export_client(ttl_hours=1.0, max_total_bytes=0)
    old = await finished_job(client, {"format": "csv", "data": [{"a": 1}]})
    fresh = await finished_job(client, {"format": "csv", "data": [{"a": 2}]})
    two_hours_ago = time.time() - 7200
    os.utime(tmp_path / "exports" / old["filename"], (two_hours_ago, two_hours_ago))
    service = client.app[SERVICE]
    assert service.retention() == [old["filename"]]
    assert (await (await client.get(old["url"])).json())["status"] == "expired"
    assert (await (await client.get(fresh["url"])).json())["status"] == "succeeded"
    service.settings = dataclasses.replace(service.settings, max_total_bytes=1)
    assert service.retention() == [fresh["filename"]]
    assert (await (await client.get(fresh["url"])).json())["status"] == "expired"
