"""The alert rules and dashboards only query metrics the code really exports, by allowed labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import REGISTRY, CollectorRegistry

import cli.main  # noqa: F401 - defines the process metrics
import streams.agents
import streams.normalize.stage  # noqa: F401 - defines the normalize metrics
from runtime.metrics import ALLOWED_LABELS

ROOT = Path(__file__).resolve().parents[1]
METRIC = re.compile(r"\bwearables_[a-z_]+\b")
GROUPING = re.compile(r"\b(?:by|on)\s*\(([^)]*)\)")


def _exported_sample_names() -> set[str]:
    faust = CollectorRegistry()
    FaustMetrics.create(faust, "wearables_faust")
    names: set[str] = set()
    for registry in (REGISTRY, faust):
        for family in registry.collect():
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
            names.update(family.name + s for s in suffixes)
    return names


def _alert_exprs() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    exprs = []
    for path in sorted((ROOT / "grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [target["expr"] for target in panel["targets"]]
    return exprs


@pytest.mark.parametrize("expr", _alert_exprs() + _dashboard_exprs())
def test_queries_use_exported_metrics_and_allowed_labels(expr: str) -> None:
    exported = _exported_sample_names()
    used = set(METRIC.findall(expr))
    unknown = used - exported
    assert not unknown, f"not exported by any process: {sorted(unknown)}"
    for group in GROUPING.findall(expr):
        labels = {label.strip() for label in group.split(",") if label.strip()}
        assert labels <= ALLOWED_LABELS | {"le", "partition", "instance", "job"}, labels


def test_there_are_alerts_and_panels() -> None:
    assert len(_alert_exprs()) >= 4
    assert len(_dashboard_exprs()) >= 6
