"""The benchmark and soak commands work (on tiny sizes; the real runs are not part of the test suite)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_bench_command_writes_its_table(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench", "--tiny", "--only", "csv_export", "pdf_export",
                             "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "CSV 2,000 synthetic records via /export/run" in result.stdout, result.stdout + result.stderr
    report = json.loads((tmp_path / "tiny.json").read_text())
    assert [f["name"].split()[0] for f in report["figures"]] == ["CSV", "PDF"]
    assert all(f["ours"] > 0 and f["baseline"] > 0 for f in report["figures"])
    assert "| figure | ours | baseline | ratio | target | pass |" in (tmp_path / "performance.md").read_text()


def test_soak_command_reports_and_passes_on_a_short_run():
    result = subprocess.run([sys.executable, "-m", "bench.soak", "--clients", "4", "--seconds", "3"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["problems"] == [] and report["requests"] > 0 and report["exports_checked"] > 0
    assert set(report["statuses"]) <= {"200", "429"}
