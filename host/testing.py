"""Helpers for testing plugins: build an app from a config dict and plugin modules, for ``aiohttp_client``.

    async def test_hello(aiohttp_client):
        app = await make_app({"plugins": {"hello": {"greeting": "hi"}}}, plugins=[hello])
        client = await aiohttp_client(app)
        assert (await client.get("/hello")).status == 200
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from .app import HOST_KEY, REGISTRY_KEY, create_app
from .config import deep_merge, load_settings
from .lifecycle import PluginRecord

__all__ = ["make_app", "plugin_record", "sample_value"]


async def make_app(
    config: Mapping[str, Any] | None = None,
    *,
    plugins: Iterable[Any] = (),
    environ: Mapping[str, str] | None = None,
    autoload: bool = False,
) -> web.Application:
    """An app with ``plugins`` (modules or objects) and ``config`` (a dict shaped like the TOML file).

    Isolated by default: no entry points, no ``[host] plugins`` module paths, no shipped default.toml and no
    process environment; pass ``autoload=True`` or set them in ``config`` to test discovery itself.
    """
    base = {"host": {"autoload": autoload, "plugins": []}}
    settings = load_settings(data=deep_merge(base, config or {}), environ=environ or {}, default_path=None)
    return await create_app(settings, plugins=plugins)


def plugin_record(app: web.Application, name: str) -> PluginRecord:
    """What the host knows of plugin ``name`` (status, stage, error, routes...)."""
    return app[HOST_KEY].records[name]


def sample_value(app: web.Application, name: str, labels: Mapping[str, str] | None = None) -> float | None:
    """A metric sample from the app's own registry (``None`` when absent)."""
    return app[REGISTRY_KEY].get_sample_value(name, dict(labels or {}))
