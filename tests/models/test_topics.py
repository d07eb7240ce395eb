from __future__ import annotations

from models.providers import Provider
from models.topics import TOPICS, raw_topic_suffix, topic_name


def test_catalogue_matches_design_md() -> None:
    suffixes = {t.suffix: t for t in TOPICS}
    assert set(suffixes) == {"participants", "fetch-requests", "raw.fitbit", "raw.google_health",
                             "samples", "intraday", "daily", "dlq", "audit"}
    assert {s for s, t in suffixes.items() if t.compacted} == {"participants", "daily"}
    assert all("research_id" in t.key or t.suffix == "dlq" for t in TOPICS)
    assert [t.suffix for t in TOPICS if t.kept_forever] == ["audit"]  # the append-only log of withdrawals


def test_raw_topic_per_provider() -> None:
    assert [raw_topic_suffix(p) for p in Provider] == ["raw.fitbit", "raw.google_health"]
    assert topic_name("cohort.", "raw.fitbit") == "cohort.raw.fitbit"
