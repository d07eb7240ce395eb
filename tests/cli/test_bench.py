"""`wearables bench pipeline` on a tiny cohort: the JSON carries every figure the issue asks for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from connectors.vendors import google_health_spec

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KEYS = {"end_to_end_samples_per_s", "baseline_samples_per_s", "baseline_ratio", "limit_samples_per_s", "limit_ratio",
        "state_bytes_per_participant_day", "peak_rss_bytes", "parameters", "normalize_samples_per_s",
        "daily_samples_per_s"}


def test_bench_pipeline_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEARABLES_", "KAFKA_"))}
    env["WEARABLES_DATA_DIR"] = str(tmp_path)
    litter_before = set(ROOT.glob("*-data"))
    result = subprocess.run([sys.executable, "-m", "cli.main", "bench", "pipeline", "--participants", "3", "--days",
                             "2", "--baseline-participants", "1", "--workers", "2", "--runs", "2", "--out", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert set(ROOT.glob("*-data")) == litter_before, "a Faust app wrote its data directory into the cwd"
    figures = orjson.loads(out.read_text())
    assert KEYS <= set(figures)
    assert figures["samples"] == 3 * 2 * 2 * 1440
    assert figures["parameters"]["participants"] == 3 and figures["parameters"]["days"] == 2
    assert 0 < figures["limit_ratio"] < 10 and figures["baseline_ratio"] > 0
    assert 500 < figures["state_bytes_per_participant_day"] < 8192
    assert figures["participant_days"] == 3 * 2  # read back from the day-state changelog
    assert len(figures["runs_end_to_end_samples_per_s"]) == 2 and figures["parameters"]["workers"] == 2
    assert figures["workers_cpu_s"] > 0 and figures["peak_rss_bytes"] > figures["workers_peak_rss_bytes"] > 0
    assert "end_to_end_samples_per_s" in result.stdout


def test_bench_connector_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "connector.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEARABLES_", "KAFKA_"))}
    env["WEARABLES_DATA_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "cli.main", "bench", "connector", "--participants", "30",
                             "--days", "2", "--out", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    figures = orjson.loads(out.read_text())
    assert {"requests_per_s", "samples_per_s", "rate_limit_violations"} <= set(figures)
    assert figures["rate_limit_violations"] == 0
    # the same run's limit: plain GETs of the same pages, none refused, and CPU per 1,000 requests
    assert figures["limit_requests"] > 0 and figures["limit_429s"] == 0
    assert figures["limit_requests_per_s"] > 0
    assert abs(figures["limit_ratio"] - figures["requests_per_s"] / figures["limit_requests_per_s"]) < 0.01
    assert figures["scheduler_cpu_s_per_1000_requests"] > 0 and figures["simulator_cpu_s_per_1000_requests"] > 0
    # every participant: 3 data types x (2 days + today) of backfill, each day one page at least
    per_participant = len(google_health_spec.DATA_TYPES) + len(google_health_spec.UNDATED_TYPES)  # a request each
    assert figures["fetch_requests"] == 30 * per_participant
    assert figures["fetch_outcomes"] == {"done": 30 * per_participant}
    assert figures["requests"] >= 30 * 3 * 3 and figures["pages_published"] == figures["requests"]
    assert figures["requests_per_s"] > 0 and figures["samples_per_s"] > figures["requests_per_s"]
    assert "requests_per_s" in result.stdout
