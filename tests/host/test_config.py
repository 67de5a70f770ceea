"""Config layers and their precedence, errors that name the key path, plugin sections, masked secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from host import ConfigError, Field, load_settings, positive
from host.config import DEFAULT_CONFIG_PATH, HOST_SCHEMA, defaults, read_toml
from host.testing import make_app, plugin_record
from tests.conftest import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overlay.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_default_toml_matches_the_embedded_defaults():
    assert read_toml(DEFAULT_CONFIG_PATH)["host"] == defaults(HOST_SCHEMA)


def test_defaults_bind_loopback_4001():
    settings = load_settings(environ={})
    assert (settings.host["host"], settings.host["port"]) == ("127.0.0.1", 4001)


def test_precedence_default_then_file_then_env_then_cli(tmp_path):
    overlay = write(tmp_path, '[host]\nport = 5000\nhost = "127.0.0.2"\nlog_format = "json"\n')
    assert load_settings(overlay, environ={}).host["port"] == 5000
    env = {"EXECUTOR_HOST_PORT": "6000", "EXECUTOR_HOST_HOST": "127.0.0.3"}
    settings = load_settings(overlay, environ=env)
    assert (settings.host["port"], settings.host["host"], settings.host["log_format"]) == (6000, "127.0.0.3", "json")
    settings = load_settings(overlay, environ=env, cli={"port": 7000, "host": None})
    assert (settings.host["port"], settings.host["host"]) == (7000, "127.0.0.3")


@pytest.mark.parametrize(("text", "env", "message"), [
    ("[host]\nprot = 1\n", {}, "host.prot: unknown key"),
    ('[host]\nport = "4001"\n', {}, "host.port: must be int, got str '4001'"),
    ("[host]\nport = 70000\n", {}, "host.port: must be a port number 0..65535 (0 picks a free port), got 70000"),
    ("[host]\nstrict = 1\n", {}, "host.strict: must be bool, got int 1"),
    ("[host]\nplugins = [1]\n", {}, "host.plugins[0]: must be str, got int 1"),
    ('[host]\nlog_format = "xml"\n', {}, "host.log_format: must be one of ['text', 'json'], got 'xml'"),
    ("[hots]\nport = 1\n", {}, "hots: unknown section"),
    ("", {"EXECUTOR_HOST_PROT": "1"}, "EXECUTOR_HOST_PROT: names no key of [host]"),
    ("", {"EXECUTOR_HOST_PORT": "abc"}, "host.port: must be int, got str 'abc'"),
])
def test_errors_name_the_key_path(tmp_path, text, env, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ=env)
    assert str(caught.value).startswith(message)


def test_broken_toml_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="overlay.toml: not valid TOML"):
        load_settings(write(tmp_path, "[host\n"), environ={})


SCHEMA = {
    "limit": Field(int, 5, check=positive),
    "api_token": Field(str, ""),
    "pdf": {"per_page": Field(int, 50, check=positive)},
}


def configurable():
    from host import hookimpl

    class Plugin:
        PLUGIN_NAME = "conf"

        @hookimpl
        def config_schema(self):
            return SCHEMA

    return Plugin()


async def test_plugin_section_validated_with_env_override_of_nested_key(aiohttp_client):
    app = await make_app({"plugins": {"conf": {"limit": 9, "pdf": {"per_page": 10}}}}, plugins=[configurable()],
                         environ={"EXECUTOR_CONF_PDF_PER_PAGE": "20"})
    await aiohttp_client(app)
    assert plugin_record(app, "conf").config == {"limit": 9, "api_token": "", "pdf": {"per_page": 20}}


@pytest.mark.parametrize(("section", "environ", "error"), [
    ({"limit": 0}, {}, "ConfigError: plugins.conf.limit: must be > 0, got 0"),
    ({"limt": 1}, {}, "ConfigError: plugins.conf.limt: unknown key (known keys: api_token, limit, pdf)"),
    ({"pdf": {"per_page": "x"}}, {}, "ConfigError: plugins.conf.pdf.per_page: must be int, got str 'x'"),
    ({}, {"EXECUTOR_CONF_LIMTI": "3"}, "ConfigError: EXECUTOR_CONF_LIMTI: names no key of [conf]"),
])
async def test_bad_plugin_section_fails_that_plugin_at_config(aiohttp_client, section, environ, error):
    app = await make_app({"plugins": {"conf": section}}, plugins=[configurable()], environ=environ)
    await aiohttp_client(app)
    rec = plugin_record(app, "conf")
    assert (rec.status, rec.stage) == ("failed", "config")
    assert rec.error.startswith(error)


def test_config_command_masks_secrets(tmp_path):
    overlay = write(tmp_path, '[plugins.export]\napi_token = "s3cr3t"\n[plugins.other]\npassword = "hunter2"\n')
    out = subprocess.run([sys.executable, "-m", "host", "config", "--config", str(overlay), "--port", "4100"],
                         cwd=ROOT, capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    shown = json.loads(out.stdout)
    assert shown["host"]["port"] == 4100
    assert shown["plugins"]["export"]["api_token"] == "***"
    assert shown["plugins"]["other"]["password"] == "***"
    assert "s3cr3t" not in out.stdout and "hunter2" not in out.stdout


def test_config_command_reports_errors_with_exit_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "host", "config"], cwd=ROOT, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "EXECUTOR_HOST_PORT": "many"})
    assert out.returncode == 2
    assert "host.port: must be int, got str 'many'" in out.stderr
