"""Every hookspec and every host setting is documented: adding one without docs fails here."""

from __future__ import annotations

from host import hookspecs
from host.config import HOST_SCHEMA
from tests.conftest import ROOT


def spec_names(namespace: object) -> list[str]:
    return [name for name in dir(namespace) if hasattr(getattr(namespace, name), "executor_spec")]


def test_every_host_hookspec_is_in_the_plugin_guide():
    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    names = spec_names(hookspecs)
    assert len(names) >= 6
    missing = [name for name in names if f"### `{name}" not in guide]
    assert missing == [], f"hookspecs not documented in docs/plugins.md: {missing}"


def test_every_hookspec_has_a_docstring():
    undocumented = [name for name in spec_names(hookspecs) if not (getattr(hookspecs, name).__doc__ or "").strip()]
    assert undocumented == []


def test_every_host_setting_is_in_the_plugin_guide():
    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    missing = [key for key in HOST_SCHEMA if f"`{key}`" not in guide]
    assert missing == [], f"[host] settings not documented in docs/plugins.md: {missing}"
