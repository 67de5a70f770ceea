"""An example executor plugin: ``GET /hello`` greets, counts greetings, and takes one config key.

Configure it with ``[plugins.hello] greeting = "Merhaba"`` or ``EXECUTOR_HELLO_GREETING=Merhaba``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from host import Field, hookimpl

__version__ = "1.0.0"
host_version = ">=0.1"

GREETINGS = web.AppKey("hello_greetings", Counter)


@hookimpl
def config_schema() -> dict[str, Field]:
    return {"greeting": Field(str, "Hello", "what GET /hello says")}


@hookimpl
def register_metrics(registry: CollectorRegistry, app: web.Application) -> None:
    app[GREETINGS] = Counter("hello_greetings_total", "Greetings served by GET /hello", registry=registry)


@hookimpl
def register_routes(config: dict[str, Any]) -> list[web.RouteDef]:
    async def hello(request: web.Request) -> web.Response:
        request.app[GREETINGS].inc()
        name = request.query.get("name", "world")
        return web.json_response({"message": f"{config['greeting']}, {name}!"})

    return [web.get("/hello", hello)]
