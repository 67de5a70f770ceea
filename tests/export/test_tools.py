"""The seed, check and evidence tools against a live executor (``run_dev.py`` as a child process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plugins.export.check import quantile_from_buckets, run_checks
from tests.conftest import ROOT

HEALTHY_METRICS = """
# TYPE export_requests_total counter
export_requests_total{format="csv",status="started",user="a"} 20
export_requests_total{format="csv",status="succeeded",user="a"} 19
export_requests_total{format="csv",status="failed",user="a"} 1
# TYPE export_latency_ms histogram
export_latency_ms_bucket{format="csv",size="small",le="100.0"} 10
export_latency_ms_bucket{format="csv",size="small",le="1000.0"} 20
export_latency_ms_bucket{format="csv",size="small",le="+Inf"} 20
export_latency_ms_sum{format="csv",size="small"} 5000
export_latency_ms_count{format="csv",size="small"} 20
# TYPE export_bytes_total counter
export_bytes_total{format="csv",status="success"} 1234
# TYPE export_concurrent_running gauge
export_concurrent_running 2
# TYPE export_queue_depth gauge
export_queue_depth 3
# TYPE export_fail_total counter
export_fail_total{reason="render_error",format="csv"} 1
# TYPE export_memory_bytes gauge
export_memory_bytes{format="csv"} 1e8
# TYPE export_throughput_ops_per_sec gauge
export_throughput_ops_per_sec{format="csv"} 1000
# TYPE export_success_rate gauge
export_success_rate{format="csv"} 0.95
"""


def tool(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", f"plugins.export.{name}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})


def test_check_passes_all_six_on_healthy_metrics():
    results = run_checks(HEALTHY_METRICS, max_concurrent=5)
    assert [r.ok for r in results] == [True] * 6
    assert results[1].detail == "p95 = 910 ms"  # rank 19 of 20, in (100, 1000]: 100 + 900 × (19 − 10) / 10
    assert results[2].detail == "95.0% (19 succeeded, 1 failed)"


@pytest.mark.parametrize(("edit", "failing"), [
    (lambda t: t.replace("export_memory_bytes", "export_mem_bytes"), "all nine export metrics present"),
    (lambda t: t.replace('status="failed",user="a"} 1', 'status="failed",user="a"} 5'), "success rate >= 95%"),
    (lambda t: t.replace("export_concurrent_running 2", "export_concurrent_running 6"), "running <= max_concurrent"),
    (lambda t: t.replace("export_queue_depth 3", "export_queue_depth 101"), "queue depth <= 100"),
    (lambda t: t.replace('status="success"} 1234', 'status="success"} 0'), "bytes written > 0"),
    (lambda t: t.replace('le="1000.0"} 20', 'le="1000.0"} 10\nexport_latency_ms_bucket{format="csv",size="small",'
                                           'le="30000.0"} 20'), "latency p95 < 10 s"),
])
def test_check_fails_the_right_assertion(edit, failing):
    results = run_checks(edit(HEALTHY_METRICS), max_concurrent=5)
    assert [r.name for r in results if not r.ok] == [failing]


def test_quantile_interpolation_matches_promql():
    assert quantile_from_buckets(0.5, {100.0: 50, 200.0: 100, float("inf"): 100}) == 100.0
    assert quantile_from_buckets(0.75, {100.0: 50, 200.0: 100, float("inf"): 100}) == 150.0
    assert quantile_from_buckets(0.99, {100.0: 0, float("inf"): 10}) == 100.0  # +Inf bucket → highest bound
    assert quantile_from_buckets(0.95, {100.0: 0, float("inf"): 0}) is None


def test_seed_batch_then_check_and_evidence_green(server_process, tmp_path):
    server = server_process()
    seeded = tool("seed", "--batch", "--url", server.url, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    for label in ("1,000", "5,000", "10,000"):
        assert label in seeded.stdout
    checked = tool("check", "--url", server.url, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.count("✅") == 6 and "6 passed, 0 failed" in checked.stdout
    evidence = tool("evidence", "--url", server.url, "--out", str(tmp_path / "evidence"), cwd=tmp_path)
    assert evidence.returncode == 0, evidence.stdout + evidence.stderr
    [run] = list((tmp_path / "evidence").iterdir())
    summary = (run / "SUMMARY.md").read_text()
    assert summary.rstrip().endswith("HEALTH=GREEN")
    for name in ("metrics-before.txt", "metrics-after.txt", "exports.json", "check.txt", "seed.txt"):
        assert (run / name).stat().st_size > 0


def test_failing_exports_make_seed_and_check_exit_1_and_evidence_red(server_process, tmp_path):
    not_a_font = tmp_path / "broken.ttf"
    not_a_font.write_text("this is not a TrueType font", encoding="utf-8")
    server = server_process(env={"EXECUTOR_EXPORT_PDF_FONT": str(not_a_font)})
    seeded = tool("seed", "--format", "pdf", "--records", "100", "--count", "3", "--url", server.url, cwd=tmp_path)
    assert seeded.returncode == 1
    assert "render_error" in seeded.stdout
    checked = tool("check", "--url", server.url, cwd=tmp_path)
    assert checked.returncode == 1
    assert "❌ success rate >= 95%: 0.0% (0 succeeded, 3 failed)" in checked.stdout
    evidence = tool("evidence", "--url", server.url, "--out", str(tmp_path / "evidence"), cwd=tmp_path)
    assert evidence.returncode == 1
    [run] = list((tmp_path / "evidence").iterdir())
    summary = (run / "SUMMARY.md").read_text()
    assert summary.rstrip().endswith("HEALTH=RED")
    assert "check failed: success rate >= 95%" in summary


def test_check_exits_1_when_nothing_answers(tmp_path):
    result = tool("check", "--url", "http://127.0.0.1:9", cwd=tmp_path)
    assert result.returncode == 1 and "cannot read" in result.stdout
