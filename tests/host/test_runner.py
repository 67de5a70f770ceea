"""``run_dev.py`` as a user runs it: strict boot failures, graceful shutdown, JSON logs, ``python -m host``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap

import aiohttp

from tests.conftest import ROOT, free_port

SLOW = """
    import asyncio
    from aiohttp import web
    from host import hookimpl

    RELEASE = web.AppKey("release", asyncio.Event)
    ENTERED = web.AppKey("entered", asyncio.Event)

    @hookimpl
    def register_routes(app):
        app[RELEASE] = asyncio.Event()
        app[ENTERED] = asyncio.Event()

        async def slow(request):
            request.app[ENTERED].set()
            await request.app[RELEASE].wait()
            return web.json_response({"finished": True})

        async def entered(request):
            await request.app[ENTERED].wait()
            return web.json_response({"entered": True})

        async def release(request):
            request.app[RELEASE].set()
            return web.json_response({"released": True})

        return [web.get("/slow", slow), web.get("/entered", entered), web.post("/release", release)]
"""

STARTUP_FAILS = """
    import contextlib
    from host import hookimpl

    @hookimpl
    def register_lifespan():
        @contextlib.asynccontextmanager
        async def connect():
            raise ConnectionError("queue broker unreachable")
            yield
        return connect()
"""


def run_dev(*args: str, cwd, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run_dev.py"), "--port", "0", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env={"PATH": "/usr/bin:/bin"})


def test_strict_import_failure_exits_2_with_the_line_and_no_traceback(tmp_path, write_plugin):
    write_plugin("broken", "raise RuntimeError('boom at import')\n")
    result = run_dev("--plugins-dir", str(tmp_path / "plugins"), "--strict", cwd=tmp_path)
    assert result.returncode == 2
    assert "❌ plugin broken failed at import: RuntimeError: boom at import — skipped" in result.stderr
    assert "Traceback" not in result.stderr


def test_strict_startup_failure_exits_2_and_debug_shows_the_traceback(tmp_path, write_plugin):
    write_plugin("flaky", STARTUP_FAILS)
    plain = run_dev("--plugins-dir", str(tmp_path / "plugins"), "--strict", cwd=tmp_path)
    assert plain.returncode == 2
    assert "❌ plugin flaky failed at startup: ConnectionError: queue broker unreachable — skipped" in plain.stderr
    assert "Traceback" not in plain.stderr
    debug = run_dev("--plugins-dir", str(tmp_path / "plugins"), "--strict", "--debug", cwd=tmp_path)
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_strict_in_config_file(tmp_path, write_plugin):
    write_plugin("typo", "from host import hookimpl\n@hookimpl\ndef register_rutes():\n    pass\n")
    config = tmp_path / "strict.toml"
    config.write_text(f'[host]\nstrict = true\nplugins_dirs = ["{tmp_path / "plugins"}"]\n', encoding="utf-8")
    result = run_dev("--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "❌ plugin typo failed at validation: PluginValidationError: unknown hook 'register_rutes'" in result.stderr


def test_bad_config_exits_2_naming_the_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[host]\nshutdown_timeout_s = 'soon'\n", encoding="utf-8")
    result = run_dev("--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "host.shutdown_timeout_s: must be float, got str 'soon'" in result.stderr


async def test_sigterm_drains_with_503_then_exits_0(tmp_path, write_plugin, server_process):
    write_plugin("slow", SLOW)
    server = server_process("--plugins-dir", str(tmp_path / "plugins"), "--log-format", "json")
    async with aiohttp.ClientSession() as session:
        slow = asyncio.ensure_future(session.get(f"{server.url}/slow"))
        async with session.get(f"{server.url}/entered") as response:
            assert response.status == 200
        server.proc.send_signal(signal.SIGTERM)
        while True:  # the signal arrives asynchronously: poll until the server says it drains
            async with session.get(f"{server.url}/health") as response:
                if response.status == 503:
                    body = await response.json()
                    break
        assert body["ok"] is False and body["status"] == "draining"
        async with session.post(f"{server.url}/release") as response:
            assert response.status == 200
        finished = await slow
        assert finished.status == 200 and await finished.json() == {"finished": True}
    assert await asyncio.to_thread(server.proc.wait, 30) == 0
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    messages = [line["message"] for line in lines]
    assert any(m.startswith("✅ plugin slow 0.0.0 registered (plugins dir, ") for m in messages)
    assert "executor stopped" in messages


def test_python_m_host_plugins_lists_failures_without_serving(tmp_path, write_plugin):
    write_plugin("broken", "raise ValueError('bad')\n")
    write_plugin("fine", "")
    out = subprocess.run([sys.executable, "-m", "host", "plugins", "--plugins-dir", str(tmp_path / "plugins")],
                         cwd=ROOT, capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    listed = {p["name"]: p for p in json.loads(out.stdout)["plugins"]}
    assert listed["broken"]["status"] == "failed" and listed["broken"]["stage"] == "import"
    assert listed["fine"]["status"] == "loaded"
    assert listed["export"]["status"] == "loaded"


PING = """
    from aiohttp import web
    from host import hookimpl

    @hookimpl
    def register_routes():
        async def ping(request):
            return web.json_response({"version": VERSION})
        return [web.get("/ping", ping)]
"""


async def test_reload_restarts_on_a_source_change(tmp_path, write_plugin):
    plugin = write_plugin("ping", "VERSION = 1\n" + textwrap.dedent(PING))
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_dev.py"), "--reload", "--port", str(port),
                             "--plugins-dir", str(plugin.parent)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env={"PATH": "/usr/bin:/bin"})
    url = f"http://127.0.0.1:{port}/ping"

    async def version(session: aiohttp.ClientSession) -> int | None:
        try:
            async with session.get(url) as response:
                return (await response.json())["version"] if response.status == 200 else None
        except aiohttp.ClientError:
            return None  # not listening yet, or restarting

    try:
        async with aiohttp.ClientSession() as session:
            deadline = asyncio.get_running_loop().time() + 60
            while await version(session) != 1:
                assert asyncio.get_running_loop().time() < deadline, "the server never answered"
                await asyncio.sleep(0.1)
            # the watcher may start a moment after the server: write the change until it is picked up
            while await version(session) != 2:
                assert asyncio.get_running_loop().time() < deadline, "the change was never reloaded"
                plugin.write_text("VERSION = 2\n" + textwrap.dedent(PING), encoding="utf-8")
                await asyncio.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
