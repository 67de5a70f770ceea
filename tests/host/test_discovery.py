"""Each discovery source, the fallback between them, and the reasons recorded for the sources passed over."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from host import discovery
from host.testing import make_app, plugin_record
from tests.conftest import ROOT

GREETER = """
    from aiohttp import web
    from host import hookimpl
    __version__ = "2.0.0"

    @hookimpl
    def register_routes():
        async def greet(request):
            return web.json_response({"from": __name__})
        return [web.get("/greet", greet)]
"""


@pytest.fixture
def fake_entry_points(monkeypatch: pytest.MonkeyPatch):
    """Make ``entry_points(group=...)`` return the given entry points."""

    def install(*eps: EntryPoint) -> None:
        monkeypatch.setattr(discovery, "entry_points", lambda group: [ep for ep in eps if ep.group == group])

    return install


def package_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dotted: str, source: str) -> None:
    """Write an importable module ``dotted`` under ``tmp_path`` and put it on ``sys.path``."""
    *packages, leaf = dotted.split(".")
    directory = tmp_path / "src"
    for part in packages:
        directory = directory / part
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "__init__.py").touch()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{leaf}.py").write_text(__import__("textwrap").dedent(source), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    for name in list(sys.modules):
        if name == packages[0] if packages else name == leaf:
            del sys.modules[name]


async def test_plugins_dir_file_is_discovered_and_serves(aiohttp_client, write_plugin, tmp_path):
    write_plugin("greeter", GREETER)
    app = await make_app({"host": {"plugins_dirs": [str(tmp_path / "plugins")]}})
    client = await aiohttp_client(app)
    assert (await client.get("/greet")).status == 200
    rec = (await (await client.get("/plugins")).json())["plugins"][0]
    assert rec["name"] == "greeter" and rec["source"] == "plugins dir" and rec["status"] == "loaded"
    assert rec["version"] == "2.0.0"
    assert rec["routes"] == ["GET /greet"]
    assert rec["skipped_sources"] == [
        "entry point: autoload disabled (EXECUTOR_DISABLE_PLUGIN_AUTOLOAD or [host] autoload)",
        "module path: 'greeter' is not listed in [host] plugins",
    ]


async def test_plugins_dir_package_is_discovered(aiohttp_client, tmp_path):
    package = tmp_path / "plugins" / "greeter"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .impl import *\n", encoding="utf-8")
    (package / "impl.py").write_text(__import__("textwrap").dedent(GREETER), encoding="utf-8")
    app = await make_app({"host": {"plugins_dirs": [str(tmp_path / "plugins")]}})
    client = await aiohttp_client(app)
    assert (await client.get("/greet")).status == 200
    assert plugin_record(app, "greeter").target == str(package)


async def test_module_path_is_used_when_no_entry_point(aiohttp_client, tmp_path, monkeypatch, fake_entry_points):
    fake_entry_points()
    package_module(tmp_path, monkeypatch, "acme_plugins.greeter", GREETER)
    app = await make_app({"host": {"plugins": ["acme_plugins.greeter"]}}, autoload=True)
    client = await aiohttp_client(app)
    assert (await (await client.get("/greet")).json()) == {"from": "acme_plugins.greeter"}
    rec = plugin_record(app, "greeter")
    assert (rec.source, rec.target) == ("module path", "acme_plugins.greeter")
    assert rec.skipped == ["entry point: no installed distribution publishes 'greeter' in 'executor.plugins'"]


async def test_entry_point_wins_over_module_path_and_dir(aiohttp_client, tmp_path, monkeypatch, write_plugin,
                                                         fake_entry_points):
    package_module(tmp_path, monkeypatch, "ep_greeter", GREETER)
    package_module(tmp_path, monkeypatch, "other_pkg.greeter", GREETER)
    fake_entry_points(EntryPoint("greeter", "ep_greeter", "executor.plugins"))
    write_plugin("greeter", GREETER)
    app = await make_app({"host": {"plugins": ["other_pkg.greeter"], "plugins_dirs": [str(tmp_path / "plugins")]}},
                         autoload=True)
    client = await aiohttp_client(app)
    assert (await (await client.get("/greet")).json()) == {"from": "ep_greeter"}
    rec = plugin_record(app, "greeter")
    assert (rec.source, rec.skipped) == ("entry point", [])


async def test_broken_entry_point_falls_back_to_module_path_with_reason(
        aiohttp_client, tmp_path, monkeypatch, fake_entry_points):
    fake_entry_points(EntryPoint("greeter", "no_such_module_anywhere", "executor.plugins"))
    package_module(tmp_path, monkeypatch, "fallback_pkg.greeter", GREETER)
    app = await make_app({"host": {"plugins": ["fallback_pkg.greeter"]}}, autoload=True)
    client = await aiohttp_client(app)
    assert (await client.get("/greet")).status == 200
    rec = plugin_record(app, "greeter")
    assert rec.source == "module path"
    assert rec.skipped == ["entry point no_such_module_anywhere: import failed: ModuleNotFoundError: "
                           "No module named 'no_such_module_anywhere'"]


async def test_missing_module_path_falls_back_to_plugins_dir(aiohttp_client, tmp_path, write_plugin):
    write_plugin("greeter", GREETER)
    app = await make_app({"host": {"plugins": ["nowhere.greeter"], "plugins_dirs": [str(tmp_path / "plugins")]}})
    client = await aiohttp_client(app)
    assert (await client.get("/greet")).status == 200
    rec = plugin_record(app, "greeter")
    assert rec.source == "plugins dir"
    assert rec.skipped[1] == ("module path nowhere.greeter: import failed: ModuleNotFoundError: "
                              "No module named 'nowhere'")


async def test_every_file_in_a_plugins_dir_is_a_plugin(aiohttp_client, tmp_path, write_plugin):
    for name in ("one", "two", "three"):
        write_plugin(name, "")
    (tmp_path / "plugins" / "_private.py").write_text("raise SystemExit('never imported')", encoding="utf-8")
    app = await make_app({"host": {"plugins_dirs": [str(tmp_path / "plugins")]}})
    client = await aiohttp_client(app)
    names = [p["name"] for p in (await (await client.get("/plugins")).json())["plugins"]]
    assert sorted(names) == ["one", "three", "two"]


def test_example_package_is_discovered_through_its_entry_point_after_pip_install(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(ROOT / "examples" / "hello-plugin")],
        check=True, capture_output=True,
    )
    script = (
        "import asyncio, json, sys\n"
        "from host.testing import make_app, plugin_record\n"
        "async def main():\n"
        "    app = await make_app(autoload=True)\n"
        "    rec = plugin_record(app, 'hello')\n"
        "    print(json.dumps([rec.source, rec.target, rec.version, rec.status, rec.routes]))\n"
        "asyncio.run(main())\n"
    )
    env = {"PYTHONPATH": f"{target}:{ROOT}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env)
    source, target_name, version, status, routes = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    assert (source, target_name, version) == ("entry point", "executor_hello", "1.0.0")
    assert status == "pending" and routes == ["GET /hello"]
