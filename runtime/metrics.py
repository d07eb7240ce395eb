"""Prometheus metrics for every long-running process.

Metric labels come from a fixed allow-list: an identifier (participant, research or vendor user
ID, token) can never become a label, because a label name outside the list raises at definition
time and values of the allowed labels are closed vocabularies (providers, stages, reasons).

    PAGES = counter("raw_pages_total", "Raw vendor pages consumed", ["provider"])
    PAGES.labels(provider="fitbit").inc()
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from threading import Lock, Thread
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["ALLOWED_LABELS", "METRIC_PREFIX", "counter", "gauge", "histogram", "start_metrics_server"]

logger = logging.getLogger(__name__)

METRIC_PREFIX = "wearables_"

#: Every label name any of our metrics may carry. Values are closed sets, never identifiers.
ALLOWED_LABELS = frozenset(
    {"provider", "stage", "reason", "topic", "data_type", "metric", "status", "outcome", "process",
     "resolution", "table", "command", "phase", "actor", "purge", "page", "language",
     # consumer groups and partitions are configuration, not people; a generation is a vendor API's
     "group", "partition", "api_generation", "window", "days"}
)

_M = TypeVar("_M", Counter, Gauge, Histogram)
_lock = Lock()
_defined: dict[tuple[int, str], Any] = {}


def _define(kind: type[_M], name: str, documentation: str, labelnames: tuple[str, ...] | list[str],
            registry: CollectorRegistry, **kwargs: Any) -> _M:
    bad = set(labelnames) - ALLOWED_LABELS
    if bad:
        raise ValueError(f"label(s) {sorted(bad)} are not in runtime.metrics.ALLOWED_LABELS")
    full = name if name.startswith(METRIC_PREFIX) else METRIC_PREFIX + name
    key = (id(registry), full)
    with _lock:  # get-or-create: tests build many apps in one process
        existing = _defined.get(key)
        if existing is None:
            existing = kind(full, documentation, list(labelnames), registry=registry, **kwargs)
            _defined[key] = existing
        elif not isinstance(existing, kind):
            raise ValueError(f"metric {full} already defined as {type(existing).__name__}")
    return existing


def counter(name: str, documentation: str, labelnames: tuple[str, ...] | list[str] = (), *,
            initial: Iterable[Sequence[str]] = (), registry: CollectorRegistry = REGISTRY) -> Counter:
    """A counter; ``initial`` lists label values known in advance, exported at 0 from the start.

    A labelled series exists only once it was incremented, so a query of something that has not
    happened yet (no dead letter, no 429) would answer "no data" rather than 0, and an alert
    reading it could never be checked. Closed label sets are therefore listed here.
    """
    metric = _define(Counter, name, documentation, labelnames, registry)
    for values in initial:
        metric.labels(*values)
    return metric


def gauge(name: str, documentation: str, labelnames: tuple[str, ...] | list[str] = (), *,
          registry: CollectorRegistry = REGISTRY) -> Gauge:
    return _define(Gauge, name, documentation, labelnames, registry)


def histogram(name: str, documentation: str, labelnames: tuple[str, ...] | list[str] = (), *,
              buckets: tuple[float, ...] = Histogram.DEFAULT_BUCKETS,
              registry: CollectorRegistry = REGISTRY) -> Histogram:
    return _define(Histogram, name, documentation, labelnames, registry, buckets=buckets)


def start_metrics_server(port: int, *, host: str = "0.0.0.0",  # noqa: S104 - scraped by Prometheus
                         registry: CollectorRegistry = REGISTRY) -> tuple[WSGIServer, Thread] | None:
    """Serve ``/metrics`` on ``port`` in a daemon thread; port 0 disables it."""
    if port == 0:
        return None
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        from models.errors import ConfigurationError

        raise ConfigurationError(
            f"WEARABLES_METRICS_PORT={port}: cannot listen ({error.strerror}); pick another port or 0 to disable"
        ) from None
    logger.info("metrics on http://%s:%d/metrics", host, port)
    return server, thread
