"""executor: a plugin host for aiohttp services.

Plugins import only what is listed in ``__all__`` here (and ``host.testing`` in their tests).
"""

from __future__ import annotations

from ._version import __version__
from .app import HOST_KEY, REGISTRY_KEY, SETTINGS_KEY, begin_drain, create_app, is_draining, on_drain
from .auth import Identity, identity
from .config import Field, Schema, Settings, load_settings, non_negative, positive
from .errors import BootError, ConfigError, PluginError, error_body, json_error
from .hookspecs import hookimpl, hookspec

__all__ = [
    "HOST_KEY",
    "REGISTRY_KEY",
    "SETTINGS_KEY",
    "BootError",
    "ConfigError",
    "Field",
    "Identity",
    "PluginError",
    "Schema",
    "Settings",
    "__version__",
    "begin_drain",
    "create_app",
    "error_body",
    "hookimpl",
    "hookspec",
    "identity",
    "is_draining",
    "json_error",
    "load_settings",
    "non_negative",
    "on_drain",
    "positive",
]
