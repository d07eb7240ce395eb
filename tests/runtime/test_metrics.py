from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from runtime.broker import free_port
from runtime.metrics import counter, start_metrics_server


def test_identifier_labels_are_refused() -> None:
    registry = CollectorRegistry()
    for label in ("participant_id", "research_id", "user_id", "token"):
        with pytest.raises(ValueError, match="ALLOWED_LABELS"):
            counter(f"bad_{label}_total", "x", [label], registry=registry)


def test_definitions_are_get_or_create_and_served() -> None:
    registry = CollectorRegistry()
    first = counter("pages_total", "pages", ["provider"], registry=registry)
    again = counter("pages_total", "pages", ["provider"], registry=registry)
    assert first is again
    first.labels(provider="fitbit").inc(3)
    port = free_port()
    served = start_metrics_server(port, host="127.0.0.1", registry=registry)
    assert served is not None
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        served[0].shutdown()
    assert 'wearables_pages_total{provider="fitbit"} 3.0' in body
    assert start_metrics_server(0) is None


def test_known_label_values_are_exported_at_zero_before_anything_happens() -> None:
    registry = CollectorRegistry()
    metric = counter("initial_demo_total", "x", ["stage", "reason"], initial=[("normalize", "not_json")],
                     registry=registry)
    assert registry.get_sample_value("wearables_initial_demo_total", {"stage": "normalize", "reason": "not_json"}) == 0
    assert registry.get_sample_value("wearables_initial_demo_total", {"stage": "daily", "reason": "not_json"}) is None
    metric.labels("normalize", "not_json").inc()
    assert registry.get_sample_value("wearables_initial_demo_total", {"stage": "normalize", "reason": "not_json"}) == 1
