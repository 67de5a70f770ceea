"""The application factory: host endpoints, the instrumentation every request goes through, and the plugins."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractView
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from ._version import __version__
from .auth import IDENTITY_KEY, TokenAuth
from .config import Settings, load_settings
from .errors import code_for_status, json_error
from .lifecycle import LOADED, PluginHost, PluginRecord
from .metrics import HostMetrics, LoopLag, PluginStatusCollector

log = logging.getLogger("executor.host")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class HostState:
    """What the host tracks at run time: when it started, whether it drains, how many requests are in flight."""

    started: float
    draining: bool = False
    inflight: int = 0
    drain_waiters: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


HOST_KEY = web.AppKey("executor_host", PluginHost)
REGISTRY_KEY = web.AppKey("executor_registry", CollectorRegistry)
SETTINGS_KEY = web.AppKey("executor_settings", Settings)
STATE_KEY = web.AppKey("executor_state", HostState)


def is_draining(app: web.Application) -> bool:
    """True once shutdown has begun: plugins should refuse new long work."""
    return app[STATE_KEY].draining


def on_drain(app: web.Application, waiter: Callable[[], Awaitable[None]]) -> None:
    """Have the host await ``waiter()`` while it drains at shutdown (still serving, ``/health`` 503), within
    ``[host] shutdown_timeout_s``: for plugin work that should finish before the lifespans exit."""
    app[STATE_KEY].drain_waiters.append(waiter)


def begin_drain(app: web.Application) -> None:
    """Start draining: ``/health`` answers 503 from now on."""
    app[STATE_KEY].draining = True


def _error_from_http(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    if exc.content_type == "application/json":
        return exc  # already a JSON error from a plugin
    message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    if isinstance(exc, web.HTTPNotFound) and message == exc.reason:
        message = f"no route for {request.method} {request.path}"
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        message = f"method {request.method} is not allowed for {request.path} (allowed: " \
                  f"{', '.join(sorted(exc.allowed_methods))})"
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in {"content-type", "content-length"}}
    return json_error(exc.status, code_for_status(exc.status), message, headers=headers)


class Instrumentation:
    """What every request goes through, as a wrapper put around each handler when its route is added (cheaper
    than an aiohttp middleware): auth, plugin middlewares, JSON errors, request metrics, in-flight count."""

    def __init__(self, app: web.Application, metrics: HostMetrics, auth: TokenAuth) -> None:
        self.app, self.metrics, self.auth = app, metrics, auth

    def add(self, method: str, path: str, handler: Any, rec: PluginRecord | None = None,
            **kwargs: Any) -> web.AbstractResource | None:
        """Add a route with its handler wrapped; the wrapper knows its resource from then on, so a request
        is counted without looking its route up again."""
        wrapped = self._wrap(handler, rec)
        resource = None
        for added in web.RouteDef(method, path, wrapped, kwargs).register(self.app.router):
            resource = added.resource
            wrapped.bind(resource)  # type: ignore[attr-defined]
        return resource

    def _wrap(self, handler: Handler | Callable[[web.Request], web.StreamResponse],
              rec: PluginRecord | None = None) -> Handler:
        state, host, auth = self.app[STATE_KEY], self.app[HOST_KEY], self.auth
        clock, observe, auth_on = time.perf_counter, self.metrics.observe, auth.enabled
        # a plain function answers without a coroutine of its own (the host's endpoints do; plugins may)
        synchronous = not inspect.iscoroutinefunction(handler) and not (
            isinstance(handler, type) and issubclass(handler, AbstractView))  # a view class is awaited
        # what middlewares wrap
        coroutine: Any = _as_coroutine(handler) if synchronous else handler  # type: ignore[arg-type]
        resource: Any = None  # bound by add() as soon as the route is registered, before any request

        @functools.wraps(handler)
        async def instrumented(request: web.Request) -> web.StreamResponse:
            started = clock()
            state.inflight += 1
            status = 500
            try:
                if auth_on and request.path not in auth.open_paths:
                    who = auth.identify(request.headers.get("Authorization"))
                    if who is None:
                        status = 401
                        return json_error(401, "unauthorized", "this needs a bearer token: Authorization: Bearer "
                                          "SECRET", headers={"WWW-Authenticate": 'Bearer realm="executor"'})
                    request[IDENTITY_KEY] = who
                middlewares = host.active_middlewares
                response: web.StreamResponse
                try:
                    if rec is not None and rec.status != LOADED:  # a failed plugin's routes answer 404
                        response = await _through(middlewares, _not_loaded(rec), request)
                    elif middlewares:
                        response = await _through(middlewares, coroutine, request)
                    elif synchronous:
                        response = handler(request)  # type: ignore[assignment]
                    else:
                        response = await handler(request)  # type: ignore[misc]
                except web.HTTPException as exc:
                    if exc.status < 400:
                        status = exc.status
                        raise
                    response = _error_from_http(request, exc)
                except Exception:  # noqa: BLE001 - a crash is a 500 JSON error, the traceback goes to the log
                    log.exception("handler crashed: %s %s", request.method, request.path)
                    response = json_error(500, "internal_error", "internal server error; see the server log")
                status = response.status
                return response
            finally:
                state.inflight -= 1
                observe(resource, request.method, status, clock() - started)

        def bind(route_resource: Any) -> None:
            nonlocal resource
            resource = route_resource

        instrumented.bind = bind  # type: ignore[attr-defined]
        return instrumented


def _through(middlewares: list[Any], handler: Handler, request: web.Request) -> Awaitable[web.StreamResponse]:
    for mw in reversed(middlewares):
        handler = functools.partial(mw, handler=handler)
    return handler(request)


def _as_coroutine(handler: Callable[[web.Request], web.StreamResponse]) -> Handler:
    async def call(request: web.Request) -> web.StreamResponse:
        return handler(request)

    return call


def _not_loaded(rec: PluginRecord) -> Handler:
    async def not_loaded(request: web.Request) -> web.StreamResponse:
        raise web.HTTPNotFound(text=f"plugin {rec.name!r} is not loaded")

    return not_loaded


async def _unmatched(request: web.Request) -> web.StreamResponse:
    """The last route: 405 when the path exists for other methods, else 404 (both as JSON, like every error)."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is request.match_info.route.resource:
            continue
        match, methods = await resource.resolve(request)
        allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def _health(state: HostState, host: PluginHost) -> Callable[[web.Request], web.Response]:
    """``/health``: what it reads is bound here, so a probe costs no lookups through the request."""

    def health(request: web.Request) -> web.Response:
        draining = state.draining
        return web.json_response({
            "ok": not draining,
            "status": "draining" if draining else "ok",
            "service": "executor",
            "version": __version__,
            "uptime_s": round(time.monotonic() - state.started, 3),
            "plugins": host.counts(),
        }, status=503 if draining else 200)

    return health


def plugins_list(request: web.Request) -> web.Response:
    host = request.app[HOST_KEY]
    return web.json_response({
        "host": {"version": __version__},
        "plugins": [rec.as_json() for rec in host.records.values()],
    })


async def create_app(
    settings: Settings | None = None,
    *,
    plugins: Iterable[Any] = (),
) -> web.Application:
    """Build an app: host endpoints, then every discovered plugin booted up to (not including) startup.

    ``plugins`` are modules or objects to load besides the discovered ones (what ``host.testing`` uses).
    Plugin lifespans are entered when the app starts, through the app's ``cleanup_ctx``.
    """
    settings = settings if settings is not None else load_settings(environ={})
    app = web.Application(client_max_size=settings.host["max_body_bytes"])
    registry = CollectorRegistry(auto_describe=True)
    host = PluginHost(app, settings, plugins)
    app[SETTINGS_KEY] = settings
    app[REGISTRY_KEY] = registry
    app[HOST_KEY] = host
    app[STATE_KEY] = state = HostState(started=time.monotonic())
    metrics = HostMetrics(registry)
    registry.register(PluginStatusCollector(host))
    auth = TokenAuth(settings.host["auth"]["tokens"], settings.host["auth"]["open_paths"])
    instrumentation = Instrumentation(app, metrics, auth)
    instrumentation.add("GET", "/health", _health(state, host))
    instrumentation.add("GET", "/plugins", plugins_list)
    instrumentation.add("GET", "/metrics", make_aiohttp_handler(registry))
    await host.boot(registry, instrumentation.add)
    # last, after every plugin's routes: whatever no route matches gets the same treatment as the rest
    metrics.unmatched = instrumentation.add("*", "/{path:.*}", _unmatched)

    lag = LoopLag(registry)

    async def loop_lag(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(lag.run())
        yield
        task.cancel()

    async def plugin_lifespans(app: web.Application) -> AsyncIterator[None]:
        async for _ in host.lifespan(app):
            yield

    app.cleanup_ctx.append(loop_lag)
    app.cleanup_ctx.append(plugin_lifespans)
    return app
