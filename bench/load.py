"""A load generator in its own process: ``wrk`` when installed, else an aiohttp client loop."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time

import aiohttp


def wrk(url: str, seconds: float, connections: int) -> tuple[float, int]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url]
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        command = ["taskset", "-c", "0", *command]  # the servers under test run on CPU 1
    out = subprocess.run(command,
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rate, int(re.search(r"(\d+) requests in", out).group(1))


async def _client_loop(url: str, seconds: float, connections: int) -> tuple[float, int]:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with session.get(url) as response:
                await response.read()
                done += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        return done / (time.perf_counter() - started), done


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, pid: int, seconds: float = 3.0, connections: int = 32) -> tuple[float, float]:
    """Load ``url`` from a separate process: (requests/s, server CPU µs per request)."""
    before = cpu_seconds(pid)
    if shutil.which("wrk"):
        rate, done = wrk(url, seconds, connections)
    else:
        out = subprocess.run([sys.executable, "-m", "bench.load", url, str(seconds), str(connections)],
                             capture_output=True, text=True, check=True)
        rate_text, done_text = out.stdout.split()
        rate, done = float(rate_text), int(done_text)
    return rate, (cpu_seconds(pid) - before) / max(1, done) * 1e6


if __name__ == "__main__":
    print(*asyncio.run(_client_loop(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))))
