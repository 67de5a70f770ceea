"""Nothing accepted is lost: the server is killed with SIGKILL while jobs run and wait, then restarted."""

from __future__ import annotations

import asyncio
import hashlib
import signal

import aiohttp

from plugins.export.jobs import FINISHED
from tests.export.conftest import leftovers

BIG = {"format": "csv", "source": "synthetic", "params": {"records": 3_000_000}}


async def job_state(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(url) as response:
        return await response.json()


async def wait_for(session, url, predicate, timeout=120.0) -> dict:
    """Poll a job on the live server until ``predicate`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await job_state(session, url)
        if predicate(job):
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.05)


async def test_sigkill_with_jobs_running_and_queued(server_process, tmp_path):
    env = {"EXECUTOR_EXPORT_MAX_CONCURRENT": "1", "EXECUTOR_EXPORT_DIR": str(tmp_path / "exports")}
    server = server_process(env=env)
    base = server.url
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/export/run", json={"format": "csv", "data": [{"a": 1}, {"a": 2}]}) as r:
            done_before = (await r.json())["job"]
        async with session.post(f"{base}/export/jobs", json=BIG) as r:
            big = await r.json()
        queued = []
        for body, kwargs in (({"format": "csv", "data": [{"n": i} for i in range(300)]}, {}),
                             (b'{"n": 1}\n{"n": 2}\n{"n": 3}\n', {"headers": {"Content-Type": "application/x-ndjson"}}),
                             ({"format": "pdf", "source": "synthetic", "params": {"records": 120}}, {})):
            if isinstance(body, bytes):
                async with session.post(f"{base}/export/jobs?format=csv", data=body, **kwargs) as r:
                    queued.append(await r.json())
            else:
                async with session.post(f"{base}/export/jobs", json=body) as r:
                    queued.append(await r.json())
        await wait_for(session, f"{base}{big['url']}", lambda j: j["progress"]["records_written"] > 0)

        server.proc.send_signal(signal.SIGKILL)  # first kill: the big job is retried from its spool
        server.proc.wait(10)
        server = server_process(env=env)
        base = server.url
        again = await wait_for(session, f"{base}{big['url']}",
                               lambda j: j["attempts"] == 2 and j["progress"]["records_written"] > 0)
        assert again["status"] == "running"
        assert [(await job_state(session, f"{base}{q['url']}"))["status"] for q in queued] == ["queued"] * 3

        server.proc.send_signal(signal.SIGKILL)  # second kill: it has had its retry, so it is failed
        server.proc.wait(10)
        server = server_process(env=env)
        base = server.url
        failed = await wait_for(session, f"{base}{big['url']}", lambda j: j["status"] in FINISHED)
        assert (failed["status"], failed["error"]["code"]) == ("failed", "interrupted")
        assert failed["download"] is None
        finished = [await wait_for(session, f"{base}{q['url']}", lambda j: j["status"] in FINISHED) for q in queued]
        assert [j["status"] for j in finished] == ["succeeded"] * 3
        assert [j["progress"]["records_written"] for j in finished] == [300, 3, 120]
        for job in finished:
            async with session.get(f"{base}{job['download']}") as r:
                assert r.status == 200 and hashlib.sha256(await r.read()).hexdigest() == job["sha256"]
        before = await job_state(session, f"{base}{done_before['url']}")
        async with session.get(f"{base}{before['download']}") as r:  # finished before the kills, still there
            assert r.status == 200 and hashlib.sha256(await r.read()).hexdigest() == before["sha256"]
        async with session.get(f"{base}/export/jobs?limit=10") as r:
            listed = (await r.json())["jobs"]
        assert {j["id"] for j in listed} == {done_before["id"], big["id"], *(q["id"] for q in queued)}
    exported = sorted(j["filename"] for j in [*finished, before])
    assert leftovers(tmp_path / "exports") == exported  # no partial file, no spool left


async def test_sigkill_under_load_loses_no_accepted_job(server_process, tmp_path):
    env = {"EXECUTOR_EXPORT_MAX_CONCURRENT": "2", "EXECUTOR_EXPORT_MAX_QUEUE": "50",
           "EXECUTOR_EXPORT_DIR": str(tmp_path / "exports")}
    server = server_process(env=env)
    bodies = []
    for i in range(24):
        if i % 3 == 0:
            bodies.append(({"format": "csv", "source": "synthetic", "params": {"records": 400_000, "seed": i}},
                           400_000))
        elif i % 3 == 1:
            bodies.append(({"format": "csv", "data": [{"i": i, "n": n} for n in range(500 + i)]}, 500 + i))
        else:
            bodies.append(({"format": "pdf", "source": "synthetic", "params": {"records": 300, "seed": i}}, 300))
    async with aiohttp.ClientSession() as session:
        async def submit(body: dict) -> dict:
            async with session.post(f"{server.url}/export/jobs", json=body) as response:
                assert response.status == 202
                return await response.json()

        async def poll_status() -> None:  # status calls going on at the same time
            for _ in range(50):
                async with session.get(f"{server.url}/export/status") as response:
                    await response.read()

        accepted, _ = await asyncio.gather(asyncio.gather(*(submit(body) for body, _ in bodies)), poll_status())
        while True:  # kill while jobs run and others wait
            async with session.get(f"{server.url}/export/status") as response:
                status = await response.json()
            if status["concurrentExports"] == 2 and status["queueDepth"] >= 5:
                break
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        server = server_process(env=env)
        finished = [await wait_for(session, f"{server.url}{job['url']}", lambda j: j["status"] in FINISHED,
                                   timeout=240) for job in accepted]
        for job, (body, count) in zip(finished, bodies, strict=True):
            assert job["status"] == "succeeded", job  # a job cut once is retried; none was cut twice
            assert job["progress"]["records_written"] == count
            if body["format"] == "csv":
                async with session.get(f"{server.url}{job['download']}") as response:
                    content = await response.read()
                assert content.count(b"\r\n") == count + 1
                assert hashlib.sha256(content).hexdigest() == job["sha256"]
    assert leftovers(tmp_path / "exports") == sorted(job["filename"] for job in finished)


async def test_a_spool_no_job_owns_is_removed_at_startup(export_client, tmp_path):
    """A body still being checked when the server stopped was never accepted: its spool goes at the next start."""
    spool = tmp_path / "exports" / ".spool"
    spool.mkdir(parents=True)
    (spool / "0123456789abcdef0123456789abcdef.json").write_bytes(b'{"format": "csv", "data": []}')
    client = await export_client()
    assert (await client.get("/export/jobs")).status == 200
    assert leftovers(tmp_path / "exports") == []
