"""A third party adds an export format through the export plugin's hook, installed by its entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import aiohttp

from tests.conftest import ROOT


async def test_example_ndjson_format_is_discovered_and_used(server_process, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(site), str(ROOT / "examples" / "ndjson-format")], check=True, capture_output=True)
    server = server_process(env={"PYTHONPATH": f"{site}:{ROOT}"})
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/plugins") as response:
            plugins = {p["name"]: p for p in (await response.json())["plugins"]}
        assert plugins["ndjson"]["status"] == "loaded" and plugins["ndjson"]["source"] == "entry point"
        assert plugins["ndjson"]["hooks"] == ["export_register_formats"]
        async with session.post(f"{server.url}/export/run", json={
                "format": "ndjson", "source": "synthetic", "params": {"records": 1500},
                "columns": ["id", "symbol"]}) as response:
            assert response.status == 200, await response.text()
            result = (await response.json())["result"]
        assert result["contentType"] == "application/x-ndjson" and result["filename"].endswith(".ndjson")
        async with session.get(f"{server.url}/export/jobs?limit=1") as response:
            job = (await response.json())["jobs"][0]
        async with session.get(f"{server.url}{job['download']}") as response:
            lines = (await response.text()).splitlines()
    assert len(lines) == 1500
    assert list(json.loads(lines[0])) == ["id", "symbol"] and json.loads(lines[-1])["id"] == 1500
