"""The alert rules (ops/prometheus/alerts.yml) under promtool, and the Grafana dashboard and
their provisioning by docker-compose.yml read carefully (no Docker here).

promtool comes from Debian's `prometheus` package (`make prometheus`, which `make test-fast` runs
first); these tests are skipped, saying why, only where it cannot be installed. That the queries
use only metrics the service exports is checked against a running instance:
tests/e2e/test_observability.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.observability import (
    DASHBOARD,
    ROOT,
    RULE_TESTS,
    RULES,
    alert_rules,
    dashboard,
    dashboard_queries,
    metric_names,
    panels,
    prometheus_binaries,
    rule_queries,
)


@pytest.fixture(scope="module")
def promtool() -> str:
    found = prometheus_binaries()
    if isinstance(found, str):
        pytest.skip(found)
    return found[0]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, timeout=60)


def test_promtool_checks_the_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_fails_a_rule_that_no_longer_fires(promtool: str, tmp_path: Path) -> None:
    """The unit tests have teeth: a threshold raised past the test data fails them."""
    rules = RULES.read_text().replace("[15m])) > 3", "[15m])) > 300")
    assert rules != RULES.read_text()
    (tmp_path / RULES.name).write_text(rules)
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = run(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0 and "VideoUpstreamFailing" in result.stdout + result.stderr


def test_the_compose_prometheus_config_loads_the_rules(promtool: str, tmp_path: Path) -> None:
    """devservices/prometheus.yml as docker-compose.yml mounts it: alerts.yml beside it."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(
        volume.rsplit(":", 2)[:2] for volume in compose["services"]["prometheus"]["volumes"]
    )
    assert mounts["./ops/prometheus/alerts.yml"] == "/etc/prometheus/alerts.yml"
    assert mounts["./devservices/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    shutil.copy(ROOT / "devservices" / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(RULES, tmp_path / "alerts.yml")
    result = run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_every_rule_has_a_severity_a_runbook_and_unit_tests() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    checks = [check for group in tests for check in group["alert_rule_test"]]
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("page", "ticket"), name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= set(annotations), name
        assert len(annotations["runbook"]) > 150, f"{name}: a runbook says what to do"
        own = [check for check in checks if check["alertname"] == name]
        assert any(check["exp_alerts"] for check in own), f"{name}: no test where it fires"
        assert any(not check["exp_alerts"] for check in own), f"{name}: no test where it is quiet"


def test_the_rules_cover_what_operators_must_hear_of() -> None:
    used = {name: metric_names(expr) for name, expr in rule_queries().items()}
    wanted = {
        "video_upstream_resubmissions_total",
        "video_upstream_submit_outcome_unknown_total",
        "video_intake_paused",
        "video_task_errors_total",
        "video_requests_rejected_total",
        "video_tasks_in_flight",
        "video_task_status_total",
        "video_dir_free_bytes",
        "up",
    }
    assert wanted <= set().union(*used.values())
    errors = next(alert_rules()[i] for i, n in enumerate(used) if n == "rule VideoUpstreamFailing")
    assert "upstream_unavailable|quota_exceeded" in errors["expr"]
    assert "provider" in errors["expr"]


# --- the dashboard ------------------------------------------------------------------------


def test_the_dashboard_has_a_panel_for_each_golden_signal() -> None:
    used = set().union(*(metric_names(q) for q in dashboard_queries().values()))
    assert {
        "faststream_received_messages_total",  # requests in
        "video_task_status_total",  # accepted, terminal statuses by model
        "video_requests_rejected_total",  # rejected by code
        "video_task_errors_total",  # failures by model and code
        "video_tasks_in_flight",
        "video_intake_paused",
        "video_upstream_requests_total",  # upstream calls by outcome
        "video_upstream_request_duration_seconds_bucket",  # their latency
        "video_generation_duration_seconds_bucket",
        "video_download_duration_seconds_bucket",
        "video_task_duration_seconds_bucket",
        "video_upstream_resubmissions_total",
        "video_upstream_submit_outcome_unknown_total",
        "video_upstream_submit_lookups_total",
        "video_consumer_lag_messages",
        "video_reply_copies_failed_total",
        "video_dir_free_bytes",
    } <= used
    quantiles = [q for q in dashboard_queries().values() if "histogram_quantile" in q]
    assert any("(0.5," in q for q in quantiles) and any("(0.95," in q for q in quantiles)


def test_every_panel_queries_the_dashboards_data_source() -> None:
    board = dashboard()
    (source,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"].strip()
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]


def test_compose_provisions_grafana_with_prometheus_and_the_dashboard() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert "profiles" not in grafana  # `docker compose up` starts it
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in grafana["volumes"])
    provisioning = ROOT / "ops" / "grafana" / "provisioning"
    assert mounts["./ops/grafana/provisioning"] == "/etc/grafana/provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    assert "9090:9090" in compose["services"]["prometheus"]["ports"]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "video-service.yml").read_text())[
        "providers"
    ]
    assert mounts[f"./{DASHBOARD.parent.relative_to(ROOT)}"] == provider["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    assert grafana["depends_on"] == ["prometheus"]


# --- the PromQL reader the checks rely on --------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (code) (rate(a_total{x="y", i=~"$instance"}[5m]))', {"a_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(b_bucket[$__rate_interval])))", {"b_bucket"}),
        ("c / d < 0.10 or e > 1e9", {"c", "d", "e"}),
        ("f > 0 unless on (instance) sum by (instance) (increase(g[1h])) > 0", {"f", "g"}),
        ('absent(up{job="video-service"})', {"up"}),
        ("h offset 5m and bool i", {"h", "i"}),
        ('label_values(j{job="$job"}, instance)', {"j"}),
        ("label_values(instance)", set()),
        ('count by (version) (k{l="by (x)"})', {"k"}),
    ],
)
def test_metric_names_of_a_query(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
