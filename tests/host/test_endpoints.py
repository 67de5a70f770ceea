"""The host's endpoints, the JSON error shape of every error, host metrics, and two apps side by side."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import Counter

from host import __version__, hookimpl
from host.testing import make_app, sample_value


class Echo:
    PLUGIN_NAME = "echo"

    @hookimpl
    def register_metrics(self, registry, app):
        self.calls = Counter("echo_calls_total", "echo calls", registry=registry)

    @hookimpl
    def register_routes(self):
        async def echo(request: web.Request) -> web.Response:
            self.calls.inc()
            return web.json_response(await request.json())

        async def item(request: web.Request) -> web.Response:
            return web.json_response({"id": request.match_info["id"]})

        return [web.post("/echo", echo), web.get("/items/{id}", item)]


async def test_health_shape(aiohttp_client):
    client = await aiohttp_client(await make_app(plugins=[Echo()]))
    response = await client.get("/health")
    body = await response.json()
    assert response.status == 200
    assert body["ok"] is True and body["service"] == "executor" and body["version"] == __version__
    assert body["uptime_s"] >= 0
    assert body["plugins"] == {"loaded": 1, "failed": 0}


async def test_router_errors_are_json(aiohttp_client):
    client = await aiohttp_client(await make_app(plugins=[Echo()]))
    response = await client.get("/nowhere")
    assert response.status == 404 and response.content_type == "application/json"
    assert await response.json() == {"error": {"code": "not_found", "message": "no route for GET /nowhere"}}
    response = await client.delete("/health")
    assert response.status == 405
    body = await response.json()
    assert body["error"]["code"] == "method_not_allowed" and "GET" in body["error"]["message"]
    assert "GET" in response.headers["Allow"]


async def test_oversized_body_is_a_json_413(aiohttp_client):
    client = await aiohttp_client(await make_app({"host": {"max_body_bytes": 1000}}, plugins=[Echo()]))
    response = await client.post("/echo", data=b'{"x": "' + b"a" * 5000 + b'"}',
                                 headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    ok = await client.post("/echo", json={"x": 1})
    assert await ok.json() == {"x": 1}


async def test_host_metrics_count_requests_by_route_template(aiohttp_client):
    app = await make_app(plugins=[Echo()])
    client = await aiohttp_client(app)
    for item_id in ("1", "2", "3"):
        await client.get(f"/items/{item_id}")
    await client.get("/missing")
    labels = {"route": "/items/{id}", "method": "GET", "status": "200"}
    assert sample_value(app, "executor_http_requests_total", labels) == 3
    assert sample_value(app, "executor_http_requests_total",
                        {"route": "unmatched", "method": "GET", "status": "404"}) == 1
    assert sample_value(app, "executor_http_request_duration_seconds_count",
                        {"route": "/items/{id}", "method": "GET"}) == 3
    assert sample_value(app, "executor_plugin_status", {"plugin": "echo", "status": "loaded"}) == 1
    text = await (await client.get("/metrics")).text()
    assert 'executor_plugin_boot_seconds{plugin="echo"}' in text


async def test_two_apps_in_one_process_do_not_share_metrics_or_state(aiohttp_client):
    first, second = Echo(), Echo()
    app_one = await make_app(plugins=[first])
    app_two = await make_app(plugins=[second])
    client_one = await aiohttp_client(app_one)
    client_two = await aiohttp_client(app_two)
    await client_one.post("/echo", json={})
    await client_one.post("/echo", json={})
    await client_two.post("/echo", json={})
    assert sample_value(app_one, "echo_calls_total") == 2
    assert sample_value(app_two, "echo_calls_total") == 1
    assert sample_value(app_one, "executor_http_requests_total",
                        {"route": "/echo", "method": "POST", "status": "200"}) == 2


class Shapes:
    """Handlers of every shape a plugin may give: a coroutine, a plain function, a view class."""

    PLUGIN_NAME = "shapes"

    @hookimpl
    def register_routes(self):
        def plain(request: web.Request) -> web.Response:
            return web.json_response({"shape": "function"})

        class Thing(web.View):
            async def get(self) -> web.Response:
                return web.json_response({"shape": "view"})

        def broken(request: web.Request) -> web.Response:
            raise web.HTTPConflict(text="already there")

        return [web.get("/plain", plain), web.view("/thing", Thing), web.get("/broken", broken)]


async def test_plain_functions_and_view_classes_are_handlers_too(aiohttp_client):
    app = await make_app(plugins=[Shapes()])
    client = await aiohttp_client(app)
    assert await (await client.get("/plain")).json() == {"shape": "function"}
    assert await (await client.get("/thing")).json() == {"shape": "view"}
    conflict = await client.get("/broken")
    assert conflict.status == 409
    assert await conflict.json() == {"error": {"code": "conflict", "message": "already there"}}
    counted = "executor_http_requests_total"
    assert sample_value(app, counted, {"route": "/plain", "method": "GET", "status": "200"}) == 1
    assert sample_value(app, counted, {"route": "/broken", "method": "GET", "status": "409"}) == 1
