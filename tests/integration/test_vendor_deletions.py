"""Vendor-side deletions end to end on the embedded broker: 20 Google Health participants, 7
days; three intervals withdrawn at the simulator (DELETE notifications to the gateway) → the
affected days' ``daily`` summaries and the Parquet tables equal those of a clean run of the same
cohort in which the vendor never had those samples; unaffected days are not revised."""

from __future__ import annotations

import uuid
import zoneinfo
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from connectors.simulator.service import SimulatorOptions
from connectors.simulator.world import World
from models.daily import DailySummary
from models.ids import research_id
from models.providers import Provider
from runtime.settings import Settings
from sinks.dataset import Dataset
from sinks.runner import SinkRunner
from sinks.tables import DAILY_SUMMARY, HEART_RATE_MINUTE_LEVEL, STEPS_INTRADAY
from tests.conftest import worker
from tests.connectors.stack import Stack, connector_stack
from tests.integration.daily_topic import latest_daily

pytestmark = pytest.mark.integration
PARTICIPANTS, DAYS = 20, 7
# the processing fields: how the summary came about, not what it says
_PROCESS = {"revision", "final", "late", "duplicates", "revisions"}
Deletion = tuple[int, str, int, float, float]  # participant index, data type, day index, local start h, hours


def _deletions() -> list[Deletion]:
    return [(0, "steps", 2, 9.0, 3.0),  # a morning's steps
            (3, "heart-rate", 4, 13.0, 4.0),  # an afternoon's heart rate
            (7, "heart-rate", 5, 22.0, 5.0)]  # across local midnight (worn in bed): two days lose samples


def _apply(world: World, deletions: list[Deletion]) -> set[tuple[str, int]]:
    """Withdraw the intervals at the simulator; the (participant, day index) they can touch."""
    touched = set()
    for index, data_type, day, hour, hours in deletions:
        participant = world.cohort.participant_ids[index]
        account = world.account(Provider.GOOGLE_HEALTH, participant)
        zone = zoneinfo.ZoneInfo(account.timezone)
        start = datetime.combine(world.first_day + timedelta(days=day), datetime.min.time(), zone) + timedelta(
            hours=hour)
        world.delete_samples(account, data_type, start.timestamp(), (start + timedelta(hours=hours)).timestamp())
        touched |= {(participant, day), (participant, day + 1)}
    return touched


async def _run(settings_factory: Callable[..., Settings], root: Path, *, withdraw_first: bool
               ) -> tuple[dict[str, DailySummary], dict[str, DailySummary] | None, set[str], Stack]:
    """One run: link everyone, let the backfill land; withdraw the intervals before linking
    (the clean run: the vendor never had those samples) or after the data is in (the deletion
    run). Returns (final daily, daily before the deletions, affected keys, the stack)."""
    options = SimulatorOptions.complete(participants=PARTICIPANTS, days=DAYS, sync_interval_s=0.5, late_share=0.0,
                               duplicate_share=0.0)
    async with connector_stack(settings_factory, options, backfill_days=DAYS + 1, poll_interval=3600,
                               retry_base_delay=0.05, topic_prefix=f"{root.name}{uuid.uuid4().hex[:8]}.",
                               data_dir=root / "data") as stack, worker(stack.settings):
        world = stack.sim.world

        def everyone(latest: dict[str, DailySummary]) -> bool:
            return len(latest) >= PARTICIPANTS * DAYS

        touched = _apply(world, _deletions()) if withdraw_first else set()
        for participant in world.cohort.participant_ids:
            await stack.link(participant, Provider.GOOGLE_HEALTH)
        before = await latest_daily(stack.settings, "deletions-before", done=everyone, settle_s=4, timeout=120)
        if not withdraw_first:
            touched = _apply(world, _deletions())
        after = await latest_daily(stack.settings, "deletions-after", done=everyone, settle_s=6, timeout=60)
        await SinkRunner(stack.settings, location=str(root / "dataset"), idle_exit=4).drain()
        keys = {key for key in after for participant, day in touched
                if key.endswith(f"|{(world.first_day + timedelta(days=day)).isoformat()}")
                and key.startswith(_rid(stack, participant))}
        return after, None if withdraw_first else before, keys, stack


def _rid(stack: Stack, participant: str) -> str:
    return research_id(stack.settings.require_secret_key(), participant)


def _figures(summary: DailySummary) -> dict[str, Any]:
    return {f: getattr(summary, f) for f in summary.__dataclass_fields__ if f not in _PROCESS}


def _table(root: Path, table: Any) -> pl.DataFrame:
    return Dataset(str(root)).read_all(table).sort(table.key)


@pytest.mark.timeout(420)
async def test_withdrawn_samples_leave_daily_and_the_tables_as_a_clean_run(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    deleted, before, affected, _ = await _run(settings_factory, tmp_path / "deleted", withdraw_first=False)
    clean, _, _, _ = await _run(settings_factory, tmp_path / "clean", withdraw_first=True)  # topics of its own
    # the cohort's days, and the day each participant's devices last synced (a device sample)
    assert before is not None and len(deleted) == len(clean) >= PARTICIPANTS * DAYS
    changed = {k for k in deleted if _figures(deleted[k]) != _figures(before[k])}
    assert len(changed) == 4  # three intervals, one across midnight: four days lost samples
    assert changed <= affected
    for key in changed:
        assert deleted[key].revision > before[key].revision
        assert deleted[key].samples < before[key].samples
    for key in set(deleted) - changed:  # unaffected days: not even revised
        assert deleted[key] == before[key], key
    wrong = {k: (_figures(deleted[k]), _figures(clean[k])) for k in deleted
             if _figures(deleted[k]) != _figures(clean[k])}
    assert not wrong, f"{len(wrong)} days differ from the clean run, e.g. {list(wrong.items())[:1]}"
    for table in (STEPS_INTRADAY, HEART_RATE_MINUTE_LEVEL, DAILY_SUMMARY):
        assert _table(tmp_path / "deleted" / "dataset", table).equals(
            _table(tmp_path / "clean" / "dataset", table)), table.name
