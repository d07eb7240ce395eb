"""The topic catalogue of docs/architecture.md ("Topics"): every topic the system uses.

Names are ``<prefix><suffix>`` where the prefix is configurable (default ``wearables.``). The
catalogue is data, so that topic creation, the README and the tests share one source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.providers import Provider

__all__ = ["TOPICS", "TopicSpec", "raw_topic_suffix", "topic_name"]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: its name suffix, what its key and value are, and how Kafka keeps it.

    :param suffix: the name after the configured prefix, e.g. ``"daily"``.
    :param key: what the record key is (documentation; every key is a pseudonymous research_id).
    :param value: what one record value is.
    :param compacted: ``cleanup.policy=compact`` (latest value per key is kept) instead of delete.
    :param partitions: a fixed partition count, or None for the configured default.
    :param kept_forever: ``retention.ms=-1``: an append-only log nothing ages out of.
    """

    suffix: str
    key: str
    value: str
    compacted: bool = False
    partitions: int | None = None
    kept_forever: bool = False


def raw_topic_suffix(provider: Provider) -> str:
    """``raw.fitbit`` / ``raw.google_health``: one topic of verbatim vendor pages per provider."""
    return f"raw.{provider.value}"


def topic_name(prefix: str, suffix: str) -> str:
    """The full topic name for a catalogue suffix under a prefix."""
    return f"{prefix}{suffix}"


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        "participants",
        key="research_id",
        value="link state: provider, API generation, status, consent timestamps (never tokens)",
        compacted=True,
    ),
    TopicSpec(
        "fetch-requests",
        key="research_id",
        value="what to fetch: provider, data type, date range, reason (webhook/poll/backfill)",
    ),
    *(
        TopicSpec(
            raw_topic_suffix(provider),
            key="research_id",
            value="one vendor response page, verbatim bytes + request metadata",
        )
        for provider in Provider
    ),
    TopicSpec("samples", key="research_id", value="one columnar sample batch"),
    TopicSpec("intraday", key="research_id", value="deduplicated new/changed samples, columnar"),
    TopicSpec("daily", key="research_id|local date", value="daily summary with revision", compacted=True),
    TopicSpec("dlq", key="original key", value="reason, stage, original bytes"),
    # one partition: a consumer reads the whole (small) log in order before it starts its work
    TopicSpec("audit", key="keyed pseudonym of the research_id (never the id)",
              value="withdrawal and purge records: action, actor, when, what was removed", partitions=1,
              kept_forever=True),
)
