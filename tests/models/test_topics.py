from __future__ import annotations

from models.providers import Provider
from models.topics import TOPICS, raw_topic_suffix, topic_name


def test_catalogue_matches_design_md() -> None:
    suffixes = {t.suffix: t for t in TOPICS}
    assert set(suffixes) == {"participants", "fetch-requests", "raw.fitbit", "raw.google_health",
                             "samples", "intraday", "daily", "dlq"}
    assert {s for s, t in suffixes.items() if t.compacted} == {"participants", "daily"}
    assert all("research_id" in t.key or t.suffix == "dlq" for t in TOPICS)


def test_raw_topic_per_provider() -> None:
    assert [raw_topic_suffix(p) for p in Provider] == ["raw.fitbit", "raw.google_health"]
    assert topic_name("cohort.", "raw.fitbit") == "cohort.raw.fitbit"
