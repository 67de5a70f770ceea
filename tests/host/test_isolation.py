"""A plugin that fails at any stage is skipped and nothing it registered stays; the others keep serving."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import types

import pytest
from aiohttp import web
from prometheus_client import Counter

from host import Field, hookimpl
from host.testing import make_app, plugin_record, sample_value


def healthy_plugin() -> types.SimpleNamespace:
    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"pong": True})

    class Healthy:
        PLUGIN_NAME = "healthy"

        @hookimpl
        def register_routes(self):
            return [web.get("/ping", ping)]

    return Healthy()


class Failing:
    """A plugin with a route, a metric, a middleware and a background task, which fails at ``stage``."""

    PLUGIN_NAME = "failing"

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.middleware_calls = 0
        self.task: asyncio.Task[None] | None = None

    @hookimpl
    def config_schema(self):
        if self.stage == "config":
            return {"limit": Field(int, 5, check=lambda v: "must be > 10" if v <= 10 else None)}
        return None

    @hookimpl
    def register_metrics(self, registry):
        self.counter = Counter("failing_things_total", "things", registry=registry)

    @hookimpl
    def register_routes(self):
        async def thing(request: web.Request) -> web.Response:
            return web.json_response({"thing": True})

        return [web.get("/thing", thing)]

    @hookimpl
    def register_middlewares(self):
        if self.stage == "register":
            raise RuntimeError("middleware factory broke")

        async def count(request, handler):
            self.middleware_calls += 1
            return await handler(request)

        return [count]

    @hookimpl
    def register_lifespan(self):
        @contextlib.asynccontextmanager
        async def background():
            self.task = asyncio.create_task(asyncio.Event().wait())
            try:
                yield
            finally:
                self.task.cancel()

        @contextlib.asynccontextmanager
        async def explode():
            raise RuntimeError("database unreachable")
            yield  # pragma: no cover

        return [background(), explode()] if self.stage == "startup" else [background()]


@pytest.mark.parametrize("stage", ["config", "register", "startup"])
async def test_failure_rolls_back_routes_metrics_middlewares_and_tasks(aiohttp_client, stage, caplog):
    caplog.set_level(logging.INFO, "executor.host")
    failing = Failing(stage)
    app = await make_app(plugins=[healthy_plugin(), failing])
    client = await aiohttp_client(app)

    assert (await client.get("/ping")).status == 200  # the host and the other plugin keep serving
    response = await client.get("/thing")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    assert failing.middleware_calls == 0
    assert sample_value(app, "failing_things_total") is None
    assert "failing_things_total" not in await (await client.get("/metrics")).text()
    if failing.task is not None:
        assert failing.task.cancelled() or failing.task.done()
    rec = plugin_record(app, "failing")
    assert (rec.status, rec.stage) == ("failed", stage)
    listed = {p["name"]: p for p in (await (await client.get("/plugins")).json())["plugins"]}
    assert listed["failing"]["status"] == "failed" and listed["failing"]["stage"] == stage
    assert listed["healthy"]["status"] == "loaded"
    health = await (await client.get("/health")).json()
    assert health["plugins"] == {"loaded": 1, "failed": 1}
    assert any(r.message.startswith(f"❌ plugin failing failed at {stage}: ") and r.message.endswith(" — skipped")
               for r in caplog.records)
    assert any(r.message.startswith("✅ plugin healthy 0.0.0 registered (given, ") for r in caplog.records)


async def test_a_loaded_plugins_middleware_runs(aiohttp_client):
    ok = Failing("none")
    client = await aiohttp_client(await make_app(plugins=[ok]))
    assert (await client.get("/thing")).status == 200
    assert ok.middleware_calls == 1
    assert (await client.get("/health")).status == 200
    assert ok.middleware_calls == 2


async def test_import_failure_is_skipped(aiohttp_client, write_plugin, tmp_path, caplog):
    write_plugin("broken", "raise RuntimeError('boom at import')\n")
    write_plugin("fine", "")
    client = await aiohttp_client(await make_app({"host": {"plugins_dirs": [str(tmp_path / "plugins")]}}))
    listed = {p["name"]: p for p in (await (await client.get("/plugins")).json())["plugins"]}
    assert listed["broken"]["status"] == "failed"
    assert (listed["broken"]["stage"], listed["broken"]["error"]) == ("import", "RuntimeError: boom at import")
    assert listed["fine"]["status"] == "loaded"
    assert "❌ plugin broken failed at import: RuntimeError: boom at import — skipped" in caplog.text


async def test_misspelt_hook_fails_validation(aiohttp_client, write_plugin, tmp_path):
    write_plugin("typo", """
        from host import hookimpl
        @hookimpl
        def register_rutes():
            return []
    """)
    client = await aiohttp_client(await make_app({"host": {"plugins_dirs": [str(tmp_path / "plugins")]}}))
    typo = (await (await client.get("/plugins")).json())["plugins"][0]
    assert (typo["status"], typo["stage"]) == ("failed", "validation")
    assert "register_rutes" in typo["error"]


async def test_bad_hook_signature_fails_validation(aiohttp_client, write_plugin, tmp_path):
    write_plugin("badsig", """
        from host import hookimpl
        @hookimpl
        def register_routes(app, database):
            return []
    """)
    client = await aiohttp_client(await make_app({"host": {"plugins_dirs": [str(tmp_path / "plugins")]}}))
    rec = (await (await client.get("/plugins")).json())["plugins"][0]
    assert (rec["status"], rec["stage"]) == ("failed", "validation")
    assert "database" in rec["error"]


async def test_async_hooks_are_awaited(aiohttp_client, write_plugin, tmp_path):
    write_plugin("asyncy", """
        from aiohttp import web
        from host import hookimpl, Field

        @hookimpl
        async def config_schema():
            return {"word": Field(str, "async")}

        @hookimpl
        async def register_routes(config):
            async def word(request):
                return web.json_response({"word": config["word"]})
            return [web.get("/word", word)]
    """)
    client = await aiohttp_client(await make_app({"host": {"plugins_dirs": [str(tmp_path / "plugins")]}}))
    assert await (await client.get("/word")).json() == {"word": "async"}


async def test_plugin_hookspecs_are_implemented_by_other_plugins(aiohttp_client, write_plugin, tmp_path):
    write_plugin("registry", """
        from aiohttp import web
        from host import hookimpl, hookspec

        class Specs:
            @hookspec
            def registry_colours():
                "Return colour names."

        @hookimpl
        def register_hookspecs():
            return Specs

        @hookimpl
        def register_routes(hook):
            async def colours(request):
                return web.json_response(sorted(c for cs in hook.registry_colours() for c in cs))
            return [web.get("/colours", colours)]
    """)
    write_plugin("paint", """
        from host import hookimpl
        requires = ["registry"]

        @hookimpl
        def registry_colours():
            return ["red", "teal"]
    """)
    write_plugin("wrongpaint", """
        from host import hookimpl

        @hookimpl
        def registry_colours(shade):
            return ["grey"]
    """)
    client = await aiohttp_client(await make_app({"host": {"plugins_dirs": [str(tmp_path / "plugins")]}}))
    assert await (await client.get("/colours")).json() == ["red", "teal"]
    listed = {p["name"]: p for p in (await (await client.get("/plugins")).json())["plugins"]}
    assert listed["wrongpaint"]["stage"] == "validation" and "shade" in listed["wrongpaint"]["error"]
    assert listed["paint"]["hooks"] == ["registry_colours"]


async def test_handler_crash_is_a_json_500_without_traceback(aiohttp_client, write_plugin, tmp_path, caplog):
    write_plugin("crashy", """
        from aiohttp import web
        from host import hookimpl

        @hookimpl
        def register_routes():
            async def crash(request):
                raise KeyError("secret-internal-detail")
            return [web.get("/crash", crash)]
    """)
    client = await aiohttp_client(await make_app({"host": {"plugins_dirs": [str(tmp_path / "plugins")]}}))
    response = await client.get("/crash")
    assert response.status == 500
    body = await response.json()
    assert body["error"]["code"] == "internal_error"
    assert "secret-internal-detail" not in await response.text()
    assert "secret-internal-detail" in caplog.text  # the traceback is in the log
    assert (await client.get("/health")).status == 200
