"""Ops assets: alert rules through promtool, and dashboard queries against what the plugin really exposes."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import yaml

from tests.conftest import ROOT
from tests.export.conftest import poll_status, require_tool
from tests.export.helpers import make_gate, release

OPS = ROOT / "plugins" / "export" / "ops"
METRIC = re.compile(r"\b(export_[a-z_]+)\b")


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load((OPS / "alerts.yml").read_text())["groups"] for rule in group["rules"]]


def panel_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads((OPS / "dashboard.json").read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def promtool(*args: str, cwd: Path = OPS) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("promtool"), *args], cwd=cwd, capture_output=True, text=True)


def test_alert_rules_pass_promtool_check_and_unit_tests():
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_severity_annotations_and_a_runbook_section():
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-")
               for heading in re.findall(r"^#+ (.+)$", runbook, re.M)}
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= {"ExportLatencyP95High", "ExportLatencyP95Critical", "ExportFailureSpike",
                                           "ExportFailureSpikeCritical", "ExportBytesAnomaly", "ExportSaturated",
                                           "ExportQueueDeep", "ExportSuccessRateLow"}
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        page, anchor = rule["annotations"]["runbook_url"].split("#")
        assert page == "docs/runbook.md" and anchor in anchors, rule["alert"]


def test_every_alert_has_a_series_that_fires_it_and_one_that_does_not():
    tests = yaml.safe_load((OPS / "alerts.test.yml").read_text())["tests"]
    fires, quiet = set(), set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names <= fires, f"no firing test for {names - fires}"
    assert names <= quiet, f"no quiet test for {names - quiet}"


def test_dashboard_has_the_panels_and_a_datasource_variable():
    dashboard = json.loads((OPS / "dashboard.json").read_text())
    titles = " / ".join(panel["title"].lower() for panel in dashboard["panels"])
    for needed in ("latency p95", "success rate", "bytes", "concurrency and queue", "throughput", "failures by reason"):
        assert needed in titles
    assert [v["type"] for v in dashboard["templating"]["list"]] == ["datasource"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(target["datasource"]["uid"] == "${datasource}" for target in panel["targets"])
    assert dashboard["schemaVersion"] >= 36


def test_every_dashboard_expression_parses(tmp_path):
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel_{index}", "expr": expr} for index, (_, expr) in enumerate(panel_expressions())]}]}
    (tmp_path / "dashboard-rules.yml").write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", "dashboard-rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_every_metric_in_panels_and_alerts_is_exposed_after_a_seeded_run(export_client, tmp_path):
    client = await export_client(max_concurrent=1, max_queue=0)
    for body in ({"format": "csv", "data": [{"a": 1}]}, {"format": "pdf", "source": "synthetic",
                                                        "params": {"records": 60}},
                 {"format": "boom", "data": [{"a": 1}]}):
        await client.post("/export/run", json=body)
    gate = make_gate(tmp_path, "hold")
    held = asyncio.create_task(client.post("/export/run", json={
        "format": "csv", "source": "gated", "params": {"gate": gate}}))
    await poll_status(client, lambda s: s["concurrentExports"] == 1)
    assert (await client.post("/export/run", json={"format": "csv", "data": []})).status == 429
    await asyncio.to_thread(release, gate)
    assert (await held).status == 200
    exposed = set(re.findall(r"^([a-z_]+)(?:\{| )", await (await client.get("/metrics")).text(), re.M))
    used = {name for _, expr in panel_expressions() for name in METRIC.findall(expr)}
    used |= {name for rule in alert_rules() for name in METRIC.findall(rule["expr"])}
    assert used, "no metric found in the ops assets"
    assert used <= exposed, f"queried but not exposed: {sorted(used - exposed)}"
