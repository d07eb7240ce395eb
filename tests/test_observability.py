"""The alert rules and dashboards only query metrics the code really exports, by allowed labels."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import REGISTRY, CollectorRegistry

from runtime.metrics import ALLOWED_LABELS

ROOT = Path(__file__).resolve().parents[1]
METRIC = re.compile(r"\bwearables_[a-z_]+\b")
GROUPING = re.compile(r"\b(?:by|on|ignoring)\s*\(([^)]*)\)")
#: Labels a query may group or match by besides runtime.metrics.ALLOWED_LABELS: Prometheus's own
#: (instance, job), histogram buckets (le), and the Kafka facts of the lag monitor (group,
#: partition: consumer-group names and partition numbers, closed sets, never identifiers).
EXTRA_LABELS = frozenset({"le", "partition", "instance", "job", "group"})


#: The packages whose modules define the processes' metrics (at import, as module globals).
METRIC_PACKAGES = ("runtime", "connectors", "streams", "sinks", "portal", "cli")
_SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"],
             "gaugehistogram": ["_bucket", "_gcount", "_gsum"]}


def _import_metric_modules() -> None:
    """Import every module of our packages: each process's metrics are then in the registry."""
    for name in METRIC_PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            importlib.import_module(module.name)


def exported_sample_names() -> set[str]:
    """Every sample name some process exports (counters with ``_total``, histograms' series)."""
    _import_metric_modules()
    faust = CollectorRegistry()
    FaustMetrics.create(faust, "wearables_faust")
    names: set[str] = set()
    for registry in (REGISTRY, faust):
        for family in registry.collect():
            names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, [""]))
    return names


def _alert_exprs() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, rows' nested (collapsed) panels included; rows themselves not."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from dashboard_panels(panel)
        else:
            yield panel


def _dashboard_exprs() -> list[str]:
    exprs = []
    for path in sorted((ROOT / "grafana/dashboards").glob("*.json")):
        for panel in dashboard_panels(json.loads(path.read_text(encoding="utf-8"))):
            exprs += [target["expr"] for target in panel.get("targets", [])]
    return exprs


@pytest.mark.parametrize("expr", _alert_exprs() + _dashboard_exprs())
def test_queries_use_exported_metrics_and_allowed_labels(expr: str) -> None:
    exported = exported_sample_names()
    used = set(METRIC.findall(expr))
    unknown = used - exported
    assert not unknown, f"not exported by any process: {sorted(unknown)}"
    for group in GROUPING.findall(expr):
        labels = {label.strip() for label in group.split(",") if label.strip()}
        assert labels <= ALLOWED_LABELS | EXTRA_LABELS, labels


def test_there_are_alerts_and_panels() -> None:
    assert len(_alert_exprs()) >= 4
    assert len(_dashboard_exprs()) >= 6
