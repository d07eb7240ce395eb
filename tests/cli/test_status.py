"""`wearables status` (cli/status.py): figures from two real prometheus-client scrapes, one rendered
frame, and the command against a registry served over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server
from rich.console import Console

from cli.status import (
    DISCOVERY_FILE,
    DeadLetterRow,
    LagRow,
    Rate,
    Snapshot,
    StatusFigures,
    discover_urls,
    discovery_file,
    figures,
    render,
    scrape,
    status,
)
from runtime.broker import free_port


@dataclass
class _Metrics:
    """The processes' metrics under their real names, in a registry of their own."""

    registry: CollectorRegistry
    pages: Counter
    samples: Counter
    summaries: Counter
    dead: Counter
    requests: Counter
    refreshes: Counter
    lag: Gauge
    remaining: Gauge
    newest: Gauge
    share: Gauge
    without: Gauge

    def snapshot(self, taken_at: float) -> Snapshot:
        return Snapshot.from_text(generate_latest(self.registry).decode(), taken_at)


def _metrics() -> _Metrics:
    r = CollectorRegistry()
    return _Metrics(
        registry=r,
        pages=Counter("wearables_normalize_pages", "", ["provider", "outcome"], registry=r),
        samples=Counter("wearables_normalize_samples", "", ["provider", "metric"], registry=r),
        summaries=Counter("wearables_daily_summaries", "", ["status"], registry=r),
        dead=Counter("wearables_dead_letters", "", ["stage", "reason"], registry=r),
        requests=Counter("wearables_connector_requests", "", ["provider", "outcome", "data_type"], registry=r),
        refreshes=Counter("wearables_connector_token_refreshes", "", ["provider", "outcome"], registry=r),
        lag=Gauge("wearables_consumer_group_lag", "", ["group", "topic", "partition"], registry=r),
        remaining=Gauge("wearables_connector_rate_limit_remaining", "", ["provider", "data_type"], registry=r),
        newest=Gauge("wearables_daily_newest_sample_timestamp_seconds", "", ["provider"], registry=r),
        share=Gauge("wearables_cohort_valid_day_share", "", ["window"], registry=r),
        without=Gauge("wearables_cohort_participants_without_data", "", ["days"], registry=r),
    )


def _two_scrapes() -> StatusFigures:
    m = _metrics()
    m.pages.labels("fitbit", "ok").inc(10)
    m.samples.labels("fitbit", "steps").inc(1000)
    m.lag.labels("wearables-worker", "raw.fitbit", "0").set(5)
    m.lag.labels("wearables-worker", "raw.fitbit", "1").set(7)
    m.lag.labels("wearables-sink", "daily", "0").set(1)
    m.requests.labels("fitbit", "ok", "steps").inc(2)
    before = m.snapshot(1000.0)
    m.pages.labels("fitbit", "ok").inc(30)
    m.pages.labels("google_health", "ok").inc(10)  # a series born between the scrapes
    m.samples.labels("fitbit", "steps").inc(3000)
    m.samples.labels("google_health", "heart_rate").inc(1000)
    m.summaries.labels("open").inc(6)
    m.lag.labels("wearables-worker", "raw.fitbit", "0").set(2)
    m.lag.labels("wearables-worker", "raw.fitbit", "1").set(4)
    m.dead.labels("normalize", "bad_json").inc(3)
    m.requests.labels("fitbit", "ok", "steps").inc(8)  # data_type is summed over
    m.requests.labels("fitbit", "ok", "heart_rate").inc(4)
    m.requests.labels("fitbit", "rate_limited", "steps").inc(2)
    m.refreshes.labels("fitbit", "refreshed").inc(1)
    m.refreshes.labels("google_health", "refreshed").inc(3)
    m.remaining.labels("fitbit", "steps").set(150)
    m.remaining.labels("fitbit", "heart_rate").set(90)  # the tightest binds
    m.newest.labels("fitbit").set(940.0)
    m.share.labels("7d").set(0.875)
    m.without.labels("3").set(4)
    return figures(before, m.snapshot(1002.0), 2.0)


def test_rates_are_the_increase_per_second_summed_over_every_series() -> None:
    f = _two_scrapes()
    assert dict(f.throughput) == {"raw pages": Rate(50, 20.0), "samples": Rate(5000, 2000.0),
                                  "sample batches": None, "daily summaries": Rate(6, 3.0), "sink rows": None}
    assert f.dead_letters == (DeadLetterRow("normalize", "bad_json", Rate(3, 1.5)),)
    assert f.vendor_requests == {("fitbit", "ok"): Rate(14, 6.0), ("fitbit", "rate_limited"): Rate(2, 1.0)}
    assert f.token_refreshes == {"refreshed": Rate(4, 2.0)}
    assert f.rate_limit_remaining == {"fitbit": 90}


def test_lag_is_summed_over_partitions_by_group_and_topic_with_its_change() -> None:
    f = _two_scrapes()
    assert f.lag_source == "wearables_consumer_group_lag"
    assert f.lag == (LagRow("wearables-sink", "daily", 1, 0.0), LagRow("wearables-worker", "raw.fitbit", 6, -3.0))


def test_freshness_and_completeness_come_from_their_gauges() -> None:
    f = _two_scrapes()
    assert f.freshness_s == {"fitbit": 62.0}
    assert f.valid_day_share == {"7d": 0.875}
    assert f.without_data == {"3": 4}


def test_lag_falls_back_to_faust_end_minus_committed_offsets() -> None:
    r = CollectorRegistry()
    end = Gauge("wearables_faust_topic_partition_end_offset", "", ["topic", "partition"], registry=r)
    committed = Gauge("wearables_faust_topic_partition_offset_commited", "", ["topic", "partition"], registry=r)
    end.labels("raw.fitbit", "0").set(100)
    committed.labels("raw.fitbit", "0").set(60)
    end.labels("raw.fitbit", "1").set(50)
    committed.labels("raw.fitbit", "1").set(50)
    end.labels("samples", "0").set(9)  # never committed: no lag to tell yet
    snapshot = Snapshot.from_text(generate_latest(r).decode(), 0.0)
    f = figures(snapshot, snapshot, 2.0)
    assert f.lag == (LagRow("worker (Faust offsets)", "raw.fitbit", 40, 0.0),)
    assert f.lag_source.endswith("(Faust)")


def test_a_restarted_process_counts_from_zero_not_negative() -> None:
    m = _metrics()
    m.pages.labels("fitbit", "ok").inc(500)
    before = m.snapshot(0.0)
    restarted = _metrics()
    restarted.pages.labels("fitbit", "ok").inc(8)
    assert dict(figures(before, restarted.snapshot(4.0), 4.0).throughput)["raw pages"] == Rate(8, 2.0)


def test_declared_but_empty_counters_are_zero_and_absent_metrics_are_none() -> None:
    empty = _metrics().snapshot(0.0)  # labelled metrics with no child: HELP/TYPE only
    f = figures(empty, empty, 2.0)
    assert f.dead_letters == () and f.vendor_requests == {}
    assert dict(f.throughput)["raw pages"] == Rate(0, 0.0)
    nothing = Snapshot.from_text("", 0.0)
    g = figures(nothing, nothing, 2.0)
    assert g.lag is None and g.dead_letters is None and g.vendor_requests is None and g.freshness_s is None
    assert g.valid_day_share is None and g.rate_limit_remaining is None and g.token_refreshes is None
    assert all(rate is None for _, rate in g.throughput)


def _text(f: StatusFigures, *, wide: bool = True) -> str:
    console = Console(record=True, width=120)
    console.print(render(f, wide=wide))
    return console.export_text()


def test_one_frame_shows_every_figure() -> None:
    text = _text(_two_scrapes())
    lines = text.splitlines()
    assert "rates over 2.0 s" in lines[0]
    for expected in ("20.0/s", "2,000/s", "3.0/s", "raw.fitbit", "wearables-worker", "-3.0/s", "bad_json",
                     "1.5/s", "rate_limited", "6.0/s", "62 s", "87.5%", "90"):
        assert expected in text, expected
    [pages] = [line for line in lines if "raw pages" in line]
    assert "20.0/s" in pages and "50" in pages
    [sink] = [line for line in lines if "sink rows" in line]
    assert "n/a" in sink


def test_a_frame_without_any_metric_says_n_a_everywhere() -> None:
    nothing = Snapshot.from_text("", 0.0)
    text = _text(figures(nothing, nothing, 2.0, {"http://127.0.0.1:1/metrics": "refused"}), wide=False)
    assert "unreachable: http://127.0.0.1:1/metrics (refused)" in text
    assert text.count("n/a") >= 12


def test_the_discovery_file_lives_as_long_as_its_block(tmp_path: Path) -> None:
    assert discover_urls(tmp_path) is None
    with discovery_file(tmp_path / "var", ["http://127.0.0.1:9464/metrics"]) as path:
        assert path == tmp_path / "var" / DISCOVERY_FILE
        assert discover_urls(tmp_path / "var") == ["http://127.0.0.1:9464/metrics"]
    assert not path.exists()
    with discovery_file(tmp_path, ["http://a/metrics"]) as path:
        path.write_text(json.dumps({"metrics": ["http://b/metrics"]}))  # a second demo took over
    assert discover_urls(tmp_path) == ["http://b/metrics"]


def test_scrape_merges_the_endpoints_that_answer_and_says_why_others_did_not() -> None:
    texts = {"http://a/metrics": "wearables_sink_rows_total{table=\"x\"} 3\n",
             "http://b/metrics": "wearables_sink_rows_total{table=\"x\"} 4\n"}

    def fetch(url: str) -> str:
        if url not in texts:
            raise OSError("connection refused")
        return texts[url]

    snapshot, failed = scrape([*texts, "http://c/metrics"], fetch)
    assert snapshot is not None and snapshot.grouped("wearables_sink_rows_total", ("table",)) == {("x",): 7}
    assert failed == {"http://c/metrics": "connection refused"}


@pytest.fixture
def served() -> Iterator[tuple[str, _Metrics]]:
    """A registry over HTTP whose pages and samples keep flowing while the command scrapes it."""
    m = _metrics()
    m.lag.labels("wearables-worker", "raw.google_health", "3").set(42)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=m.registry)
    stop = threading.Event()

    def flow() -> None:
        while not stop.wait(0.01):
            m.pages.labels("google_health", "ok").inc()
            m.samples.labels("google_health", "steps").inc(100)

    flowing = threading.Thread(target=flow, daemon=True)
    flowing.start()
    yield f"http://127.0.0.1:{port}/metrics", m
    stop.set()
    flowing.join()
    server.shutdown()
    thread.join()


def _rate_in(output: str, stage: str) -> float:
    [line] = [line for line in output.splitlines() if line.lstrip("│ ").startswith(stage)]
    return float(next(cell for cell in line.split() if cell.endswith("/s")).removesuffix("/s").replace(",", ""))


def test_status_once_against_a_served_registry_shows_flow_and_lag(served: tuple[str, _Metrics]) -> None:
    url, _ = served
    result = CliRunner().invoke(status, ["--url", url, "--once", "--interval", "0.5"])
    assert result.exit_code == 0, result.output
    assert _rate_in(result.stdout, "raw pages") > 0
    assert _rate_in(result.stdout, "samples") > 0
    [lag] = [line for line in result.stdout.splitlines() if "raw.google_health" in line]
    assert "wearables-worker" in lag and "42" in lag


def test_status_finds_the_demo_through_its_discovery_file(served: tuple[str, _Metrics], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = served
    monkeypatch.setenv("WEARABLES_DATA_DIR", str(tmp_path))
    with discovery_file(tmp_path, [url]):
        result = CliRunner().invoke(status, ["--once", "--interval", "0.2"])
    assert result.exit_code == 0, result.output
    assert "raw.google_health" in result.stdout


def test_an_unreachable_url_is_one_line_naming_it_and_exit_2() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    result = CliRunner().invoke(status, ["--url", url, "--once", "--interval", "0.1"])
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert url in line and "--url" in line and "wearables demo" in line


def test_without_a_demo_or_url_it_says_how_to_start_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEARABLES_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(status, ["--once"])
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert str(tmp_path / DISCOVERY_FILE) in line and "--url" in line
