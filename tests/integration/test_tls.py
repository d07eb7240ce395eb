"""The pipeline over TLS to the embedded broker (its stunnel4 TLS mode), as against a production
cluster reached with KAFKA_SECURITY_PROTOCOL=SSL: the Faust worker and the aiokafka clients
alike, and `wearables demo --tls` with every process of the demo."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from models.ids import research_id
from runtime.broker import EmbeddedBroker
from runtime.kafka import make_producer
from runtime.settings import Settings
from tests.builders import send_minute_pages
from tests.conftest import worker
from tests.integration.daily_topic import Latest, latest_daily

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PARTICIPANTS, DAYS = 3, 2


def _expected(n: int) -> dict[str, object]:
    """What participant ``n``'s day of ``fitbit_minute_pages`` summarizes to, computed from the page values."""
    steps = [((minute * 7 + n) % 40) if 420 <= minute < 1260 else 0 for minute in range(1440)]
    heart = [60 + (minute + n) % 50 for minute in range(1440)]
    hours = sum(1 for hour in range(24) if any(steps[hour * 60:(hour + 1) * 60]))
    return {"steps": sum(steps), "vendor_steps": sum(steps), "minutes_with_hr": 1440, "hr_min": float(min(heart)),
            "hr_max": float(max(heart)), "hr_mean": statistics.fmean(heart), "hours_with_steps": hours,
            "valid_day": hours >= 10 and 100 <= sum(steps) <= 45_000}


@pytest.mark.timeout(180)
async def test_a_worker_over_tls_turns_raw_pages_into_daily_summaries(tls_broker: EmbeddedBroker,
                                                                      tmp_path: Path) -> None:
    assert tls_broker.tls is not None
    settings = Settings.model_validate({
        "env": "demo", "topic_prefix": "tls.", "kafka_bootstrap_servers": tls_broker.bootstrap,
        "data_dir": tmp_path / "data", "store": "memory://", "partitions": 4, "metrics_port": 0,
        "finalize_interval": 3600, **tls_broker.tls.settings()})
    assert settings.kafka.security_protocol == "SSL"
    secret = settings.require_secret_key()
    rids = [research_id(secret, f"P{n:03d}") for n in range(PARTICIPANTS)]
    first = date.today() - timedelta(days=DAYS + 1)
    expected = {f"{rid}|{first + timedelta(days=offset)}": _expected(n)
                for n, rid in enumerate(rids) for offset in range(DAYS)}

    def complete(latest: Latest) -> bool:
        return set(latest) == set(expected) and all(latest[k].steps == v["steps"] for k, v in expected.items())

    async with worker(settings):  # Faust's consumer, producer and changelogs over TLS
        producer = make_producer(settings)
        await producer.start()
        try:
            await send_minute_pages(producer, settings.topic("raw.fitbit"), rids, first, DAYS)
            await producer.flush()
        finally:
            await producer.stop()
        latest = await latest_daily(settings, "tls-check", done=complete, timeout=120, settle_s=1.0)

    assert set(latest) == set(expected)
    for key, values in expected.items():
        summary = latest[key]
        got = {name: getattr(summary, name) for name in values}
        assert got == pytest.approx(values), key
        assert summary.source == "fitbit" and summary.samples == 2 * 1440 + 1  # steps, heart rate, the daily total


@pytest.mark.timeout(300)
def test_the_demo_runs_over_tls(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEARABLES_", "KAFKA_"))}
    env["WEARABLES_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "demo", "--tls", "--participants", "2", "--days", "1",
         "--metrics-port", "0", "--timeout", "180"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=280, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "over TLS (CA " in output
    assert re.search(r"daily topic: [1-9]\d* participant-days with data summarized", " ".join(output.split()))
    stunnel = (tmp_path / "demo-broker-stunnel.log").read_text()
    # every client of the demo came through stunnel, and none failed its handshake
    assert stunnel.count("accepted connection") >= 5
    assert "SSL_accept" not in stunnel and "Rejected by CERT" not in stunnel
