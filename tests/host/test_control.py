"""Disabling plugins, boot order by ``requires``, missing requirements, cycles and host-version checks."""

from __future__ import annotations

import pytest
from aiohttp import web

from host import __version__
from host.testing import make_app, plugin_record

BOOT_ORDER = web.AppKey("boot_order", list)

RECORDING = """
    import contextlib
    from host import hookimpl
    from tests.host.test_control import BOOT_ORDER
    requires = {requires!r}
    host_version = {host_version!r}

    @hookimpl
    def register_lifespan(app):
        @contextlib.asynccontextmanager
        async def started():
            app[BOOT_ORDER].append({name!r})
            yield
        return started()
"""


@pytest.fixture
def plugins_dir(tmp_path, write_plugin):
    def write(name: str, requires: tuple[str, ...] = (), host_version: str = "") -> None:
        write_plugin(name, RECORDING.format(name=name, requires=list(requires), host_version=host_version))

    write.path = str(tmp_path / "plugins")  # type: ignore[attr-defined]
    return write


async def boot(aiohttp_client, plugins_dir, **host):
    app = await make_app({"host": {"plugins_dirs": [plugins_dir.path], **host}})
    app[BOOT_ORDER] = []
    client = await aiohttp_client(app)
    listed = {p["name"]: p for p in (await (await client.get("/plugins")).json())["plugins"]}
    return app, listed


async def test_requires_boots_dependencies_first(aiohttp_client, plugins_dir):
    plugins_dir("alpha", requires=("gamma",))
    plugins_dir("beta", requires=("alpha", "gamma"))
    plugins_dir("gamma")
    app, listed = await boot(aiohttp_client, plugins_dir)
    assert app[BOOT_ORDER] == ["gamma", "alpha", "beta"]
    assert all(p["status"] == "loaded" for p in listed.values())


async def test_missing_requirement_fails_the_plugin_naming_it(aiohttp_client, plugins_dir):
    plugins_dir("needy", requires=("ghost",))
    plugins_dir("chained", requires=("needy",))
    plugins_dir("solo")
    app, listed = await boot(aiohttp_client, plugins_dir)
    assert listed["needy"]["error"] == "PluginError: requires 'ghost', which was not found"
    assert listed["chained"]["error"] == "PluginError: requires 'needy', which is failed at requires"
    assert app[BOOT_ORDER] == ["solo"]


async def test_cycle_fails_every_plugin_in_it(aiohttp_client, plugins_dir):
    plugins_dir("egg", requires=("hen",))
    plugins_dir("hen", requires=("egg",))
    plugins_dir("solo")
    app, listed = await boot(aiohttp_client, plugins_dir)
    for name in ("egg", "hen"):
        assert listed[name]["stage"] == "requires"
        assert "dependency cycle among: egg -> hen" in listed[name]["error"]
    assert app[BOOT_ORDER] == ["solo"]


async def test_host_version_mismatch_names_both_versions(aiohttp_client, plugins_dir):
    plugins_dir("future", host_version=">=99.0")
    plugins_dir("present", host_version=f"=={__version__}")
    app, listed = await boot(aiohttp_client, plugins_dir)
    assert listed["future"]["stage"] == "host_version"
    assert listed["future"]["error"] == f"PluginError: needs host >=99.0, this host is {__version__}"
    assert app[BOOT_ORDER] == ["present"]


async def test_invalid_host_version_specifier_fails_the_plugin(aiohttp_client, plugins_dir):
    plugins_dir("sloppy", host_version="version two")
    _, listed = await boot(aiohttp_client, plugins_dir)
    assert listed["sloppy"]["stage"] == "host_version" and "'version two'" in listed["sloppy"]["error"]


async def test_disabled_in_config(aiohttp_client, plugins_dir):
    plugins_dir("keep")
    plugins_dir("drop")
    app, listed = await boot(aiohttp_client, plugins_dir, disabled=["drop"])
    assert listed["drop"]["status"] == "disabled"
    assert app[BOOT_ORDER] == ["keep"]


async def test_disabled_by_environment(aiohttp_client, plugins_dir):
    plugins_dir("keep")
    plugins_dir("drop")
    plugins_dir("also")
    app = await make_app({"host": {"plugins_dirs": [plugins_dir.path]}},
                         environ={"EXECUTOR_DISABLE_PLUGINS": "drop, also"})
    app[BOOT_ORDER] = []
    await aiohttp_client(app)
    assert app[BOOT_ORDER] == ["keep"]
    assert plugin_record(app, "also").status == "disabled"


async def test_requiring_a_disabled_plugin_fails(aiohttp_client, plugins_dir):
    plugins_dir("base")
    plugins_dir("top", requires=("base",))
    _, listed = await boot(aiohttp_client, plugins_dir, disabled=["base"])
    assert listed["top"]["error"] == "PluginError: requires 'base', which is disabled"


async def test_autoload_off_by_environment_skips_entry_points(aiohttp_client):
    app = await make_app({"host": {"autoload": True}}, environ={"EXECUTOR_DISABLE_PLUGIN_AUTOLOAD": "1"})
    await aiohttp_client(app)
    assert "export" not in app[__import__("host").HOST_KEY].records
