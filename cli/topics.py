"""Topic creation shared by `wearables topics create`, the worker and the demo."""

from __future__ import annotations

from runtime.kafka import TopicPlan, ensure_topics, topic_plan
from runtime.settings import Settings
from streams.app import internal_topic_plan

__all__ = ["all_topic_plans", "create_all_topics"]


def all_topic_plans(settings: Settings) -> list[TopicPlan]:
    """The topic catalogue (models/topics.py) plus Faust's internal topics (changelogs, assignor)."""
    return [*topic_plan(settings), *internal_topic_plan(settings)]


async def create_all_topics(settings: Settings, bootstrap: str | None = None) -> tuple[list[str], list[str]]:
    return await ensure_topics(settings, all_topic_plans(settings), bootstrap)
