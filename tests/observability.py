"""Helpers for the observability tests: Prometheus' binaries, the PromQL of the dashboard and the
alert rules, and the metric names a `/metrics` page exports."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "ops" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "ops" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "video-service.json"
# Series Prometheus makes itself, not the service.
PROMETHEUS_OWN = frozenset({"up"})
# Grafana's variables, as a query of this dashboard may hold them, and a value to test with.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
    "$instance": ".*",
    "$job": "video-service",
}


@functools.cache
def prometheus_binaries() -> tuple[str, str] | str:
    """(promtool, prometheus) paths, installing them with `make prometheus` (Debian's package,
    through apt-get) when missing; or why they cannot be had."""
    found = shutil.which("promtool"), shutil.which("prometheus")
    if None in found:
        try:
            result = subprocess.run(
                ["make", "-s", "prometheus"], cwd=ROOT, capture_output=True, text=True, check=False
            )
            why = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
        except OSError as exc:  # no make
            why = repr(exc)
        found = shutil.which("promtool"), shutil.which("prometheus")
        if None in found:
            return f"promtool and prometheus not installed (make prometheus: {why})"
    promtool, prometheus = found
    assert promtool is not None and prometheus is not None
    return promtool, prometheus


# --- PromQL -------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_RANGE = re.compile(r"\[[^\]]*\]")
_MATCHERS = re.compile(r"\{[^}]*\}")
_LABEL_LIST = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_DURATION = re.compile(r"\b\d+(?:ms|s|m|h|d|w|y)\b")
_NUMBER = re.compile(r"(?<![\w:])(?:0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+)", re.I)
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_VALUES = re.compile(r"label_values\((?:(.*),)?\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)", re.S)
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2", "start", "end"}
)


def substitute(expr: str) -> str:
    """The query with Grafana's variables replaced by test values."""
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, label names, strings,
    durations and numbers left out). Grafana's `label_values(metric, label)` counts too."""
    text = _STRING.sub('""', substitute(expr))
    if values := _LABEL_VALUES.fullmatch(text.strip()):  # its last argument is a label
        text = values.group(1) or ""
    text = _RANGE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _DURATION.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        rest = text[match.end() :].lstrip()
        word = match.group()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue  # a function (or label_values), or an operator
        names.add(word)
    return names


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(board: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    for panel in (board or dashboard())["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> dict[str, str]:
    """Every PromQL query of the dashboard (panel targets and query variables), by where."""
    board = dashboard()
    queries = {}
    for panel in panels(board):
        for target in panel.get("targets", []):
            queries[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            queries[f"variable {variable['name']}"] = (
                query["query"] if isinstance(query, dict) else query
            )
    return queries


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def rule_queries() -> dict[str, str]:
    return {f"rule {rule['alert']}": str(rule["expr"]) for rule in alert_rules()}


# --- /metrics -----------------------------------------------------------------------------

_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}


def exported_names(exposition: str) -> set[str]:
    """The series names a Prometheus text exposition offers: every sample's name, and for each
    declared family (`# TYPE`, even without samples yet) the names its samples take."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            base = name.removesuffix("_total") if kind == "counter" else name
            names.update(base + suffix for suffix in _SUFFIXES.get(kind, ("",)))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names
