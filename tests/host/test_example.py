"""The example plugin package works as the plugin guide says, through ``host.testing``."""

from __future__ import annotations

import importlib.util

from host.testing import make_app, plugin_record, sample_value
from tests.conftest import ROOT


def load_example():
    path = ROOT / "examples" / "hello-plugin" / "executor_hello" / "__init__.py"
    spec = importlib.util.spec_from_file_location("executor_hello_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.PLUGIN_NAME = "hello"
    return module


async def test_hello_route_metric_and_config_key(aiohttp_client):
    hello = load_example()
    app = await make_app({"plugins": {"hello": {"greeting": "Merhaba"}}}, plugins=[hello])
    client = await aiohttp_client(app)
    assert await (await client.get("/hello?name=Ada")).json() == {"message": "Merhaba, Ada!"}
    assert sample_value(app, "hello_greetings_total") == 1
    assert plugin_record(app, "hello").version == "1.0.0"


async def test_hello_rejects_a_wrong_config_type(aiohttp_client):
    app = await make_app({"plugins": {"hello": {"greeting": 5}}}, plugins=[load_example()])
    await aiohttp_client(app)
    assert plugin_record(app, "hello").error == "ConfigError: plugins.hello.greeting: must be str, got int 5"
