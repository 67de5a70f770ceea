"""Factories for export tests: an app with the export plugin (and the test helpers) on a temp dir."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from typing import Any

import pytest

import plugins.export as export
from host.config import deep_merge
from host.testing import make_app
from plugins.export.jobs import FINISHED
from tests.export import helpers


def require_tool(name: str) -> str:
    """The path of a command-line tool the test needs; a missing tool fails the test (it never skips)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name!r} is not installed: apt-get install poppler-utils prometheus (see .ci/run)")
    return path


@pytest.fixture
def export_client(aiohttp_client, tmp_path) -> Callable[..., Any]:
    """``client = await export_client(max_concurrent=2, ...)``: export config keys as keyword arguments."""

    async def build(with_helpers: bool = True, **config: Any):
        section = deep_merge({"dir": str(tmp_path / "exports"), "max_concurrent": 2}, config)
        plugins = [export, helpers] if with_helpers else [export]
        app = await make_app({"plugins": {"export": section}}, plugins=plugins)
        return await aiohttp_client(app)

    return build


async def poll_status(client, predicate, timeout: float = 20.0) -> dict:
    """Poll /export/status until ``predicate(status)`` holds (the condition the test waits for)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await (await client.get("/export/status")).json()
        if predicate(status):
            return status
        assert asyncio.get_running_loop().time() < deadline, f"condition never held; last status {status}"
        await asyncio.sleep(0.02)


def leftovers(directory) -> list[str]:
    """Everything in an exports dir but the job store: export files, partial files, spooled inputs."""
    found = [p.name for p in directory.iterdir() if not p.name.startswith(".jobs.sqlite") and p.name != ".spool"]
    spool = directory / ".spool"
    if spool.is_dir():
        found += [f".spool/{p.name}" for p in spool.iterdir()]
    return sorted(found)


async def poll_job(client, url: str, predicate=lambda job: job["status"] in FINISHED, timeout: float = 60.0) -> dict:
    """Poll a job until ``predicate(job)`` holds (by default: until it has finished)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await (await client.get(url)).json()
        if predicate(job):
            return job
        assert asyncio.get_running_loop().time() < deadline, f"job never got there; last {job}"
        await asyncio.sleep(0.02)
