"""deploy/observability: the alerts and the dashboard use only metrics the real processes export.

Beat and the sidecar run as the Kubernetes base renders them (tests/support/kube.py)
against one redis-server, a schedule is dispatched, and both /metrics are scraped
over 127.0.0.1. Every rule and panel expression is parsed with promql-parser (a
binding of the Rust PromQL parser used by GreptimeDB), which also yields the metric
names; the rule file is checked against the PrometheusRule/rule-file structure.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from support.kube import BASE, ROOT, container, container_env, localize, render, scrape, start_beat, start_until_ready
from support.kube import stop as stop_sidecar
from support.redis_proc import free_port, wait_until

OBSERVABILITY = ROOT / "deploy" / "observability"
RULES = OBSERVABILITY / "prometheus-rules.yaml"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"
SEVERITIES = {"critical", "warning"}
#: The alerts the issue asks for, by what they catch.
REQUIRED_ALERTS = {
    "RedbeatNoLeader", "RedbeatHeartbeatStale", "RedbeatDispatchLagHigh", "RedbeatRunLost",
    "RedbeatSidecarNotReady", "RedbeatApplyFailing", "RedbeatDriftCorrectedRepeatedly", "RedbeatJobOverdue",
}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects; a syntax error fails the test with the parser's message."""
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    assert document["apiVersion"] == "monitoring.coreos.com/v1" and document["kind"] == "PrometheusRule"
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def exported(text: str) -> set[str]:
    """Sample names in a Prometheus text exposition (``_total``, ``_bucket`` ... as PromQL sees them)."""
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_rule_file_structure_and_expressions():
    document = yaml.safe_load(RULES.read_text())
    groups = document["spec"]["groups"]
    assert len({g["name"] for g in groups}) == len(groups)
    alerts = [r["alert"] for r in rules()]
    assert len(set(alerts)) == len(alerts), "alert names are unique"
    assert set(alerts) >= REQUIRED_ALERTS
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"Redbeat[A-Z][A-Za-z]+", rule["alert"])
        assert metric_names(rule["expr"]), f"{rule['alert']}: selects no metric"
        if "for" in rule:
            assert promql_parser.parse_duration(rule["for"]).total_seconds() > 0
        assert rule["labels"]["severity"] in SEVERITIES
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_expressions_that_do_not_parse_are_caught():
    with pytest.raises(ValueError):
        metric_names("rate(redbeat_beat_dispatches_total[5m)")


def test_dashboard_structure():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "redbeat" and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]


def test_the_observability_kustomization_builds():
    objects = render(OBSERVABILITY)
    assert sorted(o["kind"] for o in objects) == ["ConfigMap", "PrometheusRule"]
    (configmap,) = [o for o in objects if o["kind"] == "ConfigMap"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["grafana-dashboard.json"]) == json.loads(DASHBOARD.read_text())


EVERY_SECOND = "schedules:\n  - name: tick\n    task: app.heartbeat\n    every: 1s\n"


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render(BASE)


def test_every_metric_in_rules_and_dashboard_is_exported(base, tmp_path, fresh_redis):
    manifests = tmp_path / "schedules"
    manifests.mkdir()
    (manifests / "tick.yaml").write_text(EVERY_SECOND)
    spec = container(base, "schedules")
    sidecar_port = free_port()
    argv = localize(spec["args"], f"127.0.0.1:{sidecar_port}", {"/schedules": manifests})
    sidecar = start_until_ready(["redbeat-apply", *argv], container_env(spec, {"redis": {"url": fresh_redis.url}}),
                                sidecar_port)
    try:
        rig, _, beat_port = start_beat(base, fresh_redis.url, tmp_path / "beat")
        try:
            wait_until(lambda: "redbeat_beat_entry_last_run_timestamp_seconds{" in scrape(beat_port),
                       timeout=30, message="beat to dispatch the 1s schedule")
            names = exported(scrape(beat_port)) | exported(scrape(sidecar_port))
        finally:
            rig.stop_all()
    finally:
        stop_sidecar(sidecar)
    used = {name for rule in rules() for name in metric_names(rule["expr"])}
    used |= {name for expr in dashboard_exprs() for name in metric_names(expr)}
    assert used <= names, f"not exported by beat or the sidecar: {sorted(used - names)}"
    assert {n for n in used if n.startswith("redbeat_beat_")} and {n for n in used if n.startswith("redbeat_apply_")}


def test_docs_name_the_files(tmp_path):
    text = (ROOT / "docs" / "deploy.md").read_text()
    for path in (RULES, DASHBOARD, BASE / "kustomization.yaml"):
        assert str(path.relative_to(ROOT)) in text or str(path.parent.relative_to(ROOT)) in text, path
    assert Path(ROOT / "action.yml").is_file() and "action.yml" in text
