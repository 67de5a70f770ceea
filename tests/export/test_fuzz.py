"""The export API, fuzzed from its own OpenAPI document: no input gets a 5xx.

A small run here; a large one: ``schemathesis run http://127.0.0.1:4001/export/openapi.json
--url http://127.0.0.1:4001 --checks not_a_server_error --max-examples 1000``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_openapi_fuzz_finds_no_server_error(server_process, tmp_path):
    cli = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    if not os.path.exists(cli):
        pytest.fail("schemathesis is not installed: python -m pip install -e '.[dev]'")
    server = server_process()
    result = subprocess.run(
        [cli, "run", f"{server.url}/export/openapi.json", "--url", server.url, "--checks", "not_a_server_error",
         "--max-examples", "15", "--seed", "1", "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout and "failed" not in result.stdout.split("SUMMARY")[-1]
