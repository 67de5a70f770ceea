"""Every hook the host calls, each with a one-line contract. Documented in ``docs/plugins.md``.

A plugin implements any of them with ``@hookimpl`` (sync or ``async def``) and takes only the arguments it
needs, by name. The host calls each plugin's hooks on its own, in dependency order, so that a plugin that
fails is skipped without touching the others.
"""

from __future__ import annotations

from typing import Any

import pluggy
from aiohttp import web
from prometheus_client import CollectorRegistry

from .config import Schema

PROJECT_NAME = "executor"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_hookspecs() -> Any:
    """Return a module or class of ``@hookspec`` functions that other plugins may implement."""


@hookspec
def config_schema() -> Schema | None:
    """Return the schema of the plugin's ``[plugins.NAME]`` table; the host validates it at boot."""


@hookspec
def register_metrics(registry: CollectorRegistry, config: dict[str, Any], app: web.Application) -> None:
    """Create the plugin's metrics on ``registry``; they are exposed only while the plugin is loaded."""


@hookspec
def register_routes(app: web.Application, config: dict[str, Any], hook: pluggy.HookRelay) -> Any:
    """Return routes: a ``web.RouteTableDef`` or a list of ``web.RouteDef`` (``web.get(...)`` and friends)."""


@hookspec
def register_middlewares(app: web.Application, config: dict[str, Any]) -> Any:
    """Return a list of aiohttp middlewares ``async def mw(request, handler)``, run while the plugin is loaded."""


@hookspec
def register_lifespan(app: web.Application, config: dict[str, Any], hook: pluggy.HookRelay) -> Any:
    """Return an async context manager (or a list of them): entered at startup, exited at shutdown."""
