"""cli/topics.py: the topics to pre-create are the catalogue plus Faust's internal topics."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cli.topics import all_topic_plans, create_all_topics
from models.topics import TOPICS
from runtime.kafka import check_reachable, topic_plan
from runtime.settings import Settings
from streams.app import internal_topic_plan


def test_the_plan_is_the_catalogue_then_faust_s_internal_topics_all_under_the_prefix() -> None:
    settings = Settings(env="demo", topic_prefix="study7.", partitions=3)  # type: ignore[arg-type]
    plans = all_topic_plans(settings)
    assert plans == [*topic_plan(settings), *internal_topic_plan(settings)]
    names = [plan.name for plan in plans]
    assert len(names) == len(set(names)) == len(TOPICS) + 3  # two changelogs and the assignor topic
    assert all(name.startswith("study7.") for name in names)
    assert {"study7.samples", "study7.daily", "study7.worker-days-changelog",
            "study7.worker-__assignor-__leader"} <= set(names)


@pytest.mark.integration
async def test_create_all_topics_creates_exactly_the_plan(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    created, present = await create_all_topics(settings)
    assert sorted(created) == sorted(plan.name for plan in all_topic_plans(settings)) and present == []
    mine = {name for name in await check_reachable(settings) if name.startswith(settings.kafka.topic_prefix)}
    assert mine == set(created)
