"""Bearer tokens: stored as digests, compared in constant time; /health stays open; loopback without tokens."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from aiohttp import web

from host import hookimpl, identity
from host.testing import make_app
from tests.conftest import ROOT


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


TOKENS = [{"name": "alice", "sha256": digest("alice-secret")},
          {"name": "ops", "sha256": digest("ops-secret"), "admin": True}]


class WhoAmI:
    PLUGIN_NAME = "whoami"

    @hookimpl
    def register_routes(self):
        async def whoami(request: web.Request) -> web.Response:
            who = identity(request)
            return web.json_response(None if who is None else {"name": who.name, "admin": who.admin})

        return [web.get("/whoami", whoami)]


async def test_tokens_identify_requests_and_health_stays_open(aiohttp_client):
    client = await aiohttp_client(await make_app({"host": {"auth": {"tokens": TOKENS}}}, plugins=[WhoAmI()]))
    assert (await client.get("/health")).status == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic YWxpY2U6eA=="},
                    {"Authorization": f"Bearer {digest('alice-secret')}"}):  # the digest itself is no secret
        response = await client.get("/whoami", headers=headers)
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await client.get("/metrics")).status == 401
    alice = await client.get("/whoami", headers={"Authorization": "Bearer alice-secret"})
    assert await alice.json() == {"name": "alice", "admin": False}
    ops = await client.get("/whoami", headers={"Authorization": "Bearer ops-secret"})
    assert await ops.json() == {"name": "ops", "admin": True}


async def test_open_paths_are_configurable(aiohttp_client):
    config = {"host": {"auth": {"tokens": TOKENS, "open_paths": ["/health", "/metrics"]}}}
    client = await aiohttp_client(await make_app(config, plugins=[WhoAmI()]))
    assert (await client.get("/metrics")).status == 200
    assert (await client.get("/plugins")).status == 401


async def test_without_tokens_everyone_is_anonymous(aiohttp_client):
    client = await aiohttp_client(await make_app(plugins=[WhoAmI()]))
    assert await (await client.get("/whoami")).json() is None


@pytest.mark.parametrize(("tokens", "message"), [
    ([{"name": "a", "sha256": "alice-secret"}], "must be the 64 hex digits"),
    ([{"name": "a", "sha256": digest("x")}, {"name": "a", "sha256": digest("y")}], "used twice"),
    ([{"name": "a", "sha256": digest("x"), "role": "admin"}], "unknown key 'role'"),
])
def test_bad_token_config_names_the_problem(tokens, message):
    from host import ConfigError, load_settings

    with pytest.raises(ConfigError, match="host.auth.tokens") as caught:
        load_settings(data={"host": {"auth": {"tokens": tokens}}}, environ={}, default_path=None)
    assert message in str(caught.value)


def test_non_loopback_without_tokens_is_refused():
    result = subprocess.run([sys.executable, str(ROOT / "run_dev.py"), "--host", "0.0.0.0", "--port", "0"],
                            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "refusing to serve '0.0.0.0' with no tokens configured" in result.stderr
    assert "--insecure" in result.stderr
