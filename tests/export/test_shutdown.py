"""SIGTERM during exports: /health 503, new exports 503 with Retry-After, running ones finish, queued ones wait."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from plugins.export.jobs import FINISHED
from tests.export.test_recovery import job_state, wait_for


async def test_sigterm_drains_running_exports_and_keeps_queued_ones(server_process, tmp_path):
    env = {"EXECUTOR_EXPORT_MAX_CONCURRENT": "1", "EXECUTOR_EXPORT_DIR": str(tmp_path / "exports")}
    server = server_process(env=env)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.url}/export/jobs", json={
                "format": "csv", "source": "synthetic", "params": {"records": 600_000}}) as r:
            running = await r.json()
        async with session.post(f"{server.url}/export/jobs", json={"format": "csv", "data": [{"a": 1}]}) as r:
            queued = await r.json()
        await wait_for(session, f"{server.url}{running['url']}", lambda j: j["progress"]["records_written"] > 0)
        server.proc.send_signal(signal.SIGTERM)
        while True:  # the signal arrives asynchronously: poll until the server drains
            async with session.get(f"{server.url}/health") as r:
                if r.status == 503:
                    break
        async with session.post(f"{server.url}/export/run", json={"format": "csv", "data": [{"a": 1}]}) as r:
            assert r.status == 503 and r.headers["Retry-After"]
            assert (await r.json())["error"]["code"] == "draining"
        assert await asyncio.to_thread(server.proc.wait, 60) == 0

        server = server_process(env=env)
        finished = await job_state(session, f"{server.url}{running['url']}")
        assert finished["status"] == "succeeded" and finished["attempts"] == 1  # it finished within the grace
        assert finished["progress"]["records_written"] == 600_000
        later = await wait_for(session, f"{server.url}{queued['url']}", lambda j: j["status"] in FINISHED)
        assert later["status"] == "succeeded" and later["attempts"] == 1  # it waited, then ran after the restart
