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


def test_curves_command_draws_its_plots(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench.curves", "--tiny", "--out", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("scaling-csv.png", "scaling-pdf.png", "scaling-concurrency.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    report = json.loads((tmp_path / "curves.json").read_text())
    assert [p["records"] for p in report["csv"]] == [100, 1_000]
    assert [p["concurrency"] for p in report["concurrency"]] == [1, 2, 3, 4, 5]
    assert all(p["seconds"] > 0 for p in report["csv"] + report["pdf"])
