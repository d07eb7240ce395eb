"""The All of Us ``device`` table end to end on the embedded broker, for both vendors: the
scheduler fetches each participant's devices (Fitbit ``devices.json``, Google
``pairedDevices``), the worker passes them on, the sink writes one row per device and sync, and
the rows say what the simulator's devices say (type, model, battery, last sync in local time)."""

from __future__ import annotations

import asyncio
import time
import zoneinfo
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from connectors.simulator.devices import paired_devices
from connectors.simulator.service import SimulatorOptions
from models.ids import research_id
from models.providers import Provider
from runtime.settings import Settings
from sinks.dataset import Dataset
from sinks.runner import SinkRunner
from sinks.tables import DEVICE
from tests.conftest import worker
from tests.connectors.stack import Stack, connector_stack

pytestmark = pytest.mark.integration
PARTICIPANTS = 10

Row = tuple[str, str, str, int | None, datetime]  # type, model, battery word, level, last sync (local)


def _expected(stack: Stack, linked: list[tuple[str, Provider]], at: float) -> dict[str, set[Row]]:
    """Per research_id, the simulator's devices as the table should show them at time ``at``."""
    world, secret = stack.sim.world, stack.settings.require_secret_key()
    out: dict[str, set[Row]] = {}
    for participant, provider in linked:
        account = world.account(provider, participant)
        zone = zoneinfo.ZoneInfo(account.timezone)
        out[research_id(secret, participant)] = {
            (d.kind, d.version, d.battery,
             d.battery_level if d.reports_level or provider is Provider.GOOGLE_HEALTH else None,
             datetime.fromtimestamp(d.last_sync, zone).replace(tzinfo=None))
            for d in paired_devices(world, account, at)}
    return out


def _latest_rows(root: Path) -> dict[str, set[Row]]:
    """Per person, the latest sync of each device in the table."""
    table = Dataset(str(root)).read_all(DEVICE)
    latest = table.sort("last_sync_time").group_by("person_id", "device_id", maintain_order=True).last()
    out: dict[str, set[Row]] = {}
    for row in latest.iter_rows(named=True):
        out.setdefault(row["person_id"], set()).add((row["device_type"], row["device_version"], row["battery"],
                                                    row["battery_level"], row["last_sync_time"]))
    return out


@pytest.mark.timeout(240)
async def test_the_device_table_holds_what_each_vendor_says_of_each_device(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    options = SimulatorOptions.complete(participants=PARTICIPANTS, days=2, sync_interval_s=1.0, late_share=0.0,
                               duplicate_share=0.0)
    async with connector_stack(settings_factory, options, backfill_days=3, poll_interval=3600,
                               retry_base_delay=0.05) as stack, worker(stack.settings):
        cohort = stack.sim.world.cohort.participant_ids
        linked = [(p, Provider.GOOGLE_HEALTH if i % 2 else Provider.FITBIT) for i, p in enumerate(cohort)]
        started = time.time()
        for participant, provider in linked:
            await stack.link(participant, provider)
        rows: dict[str, set[Row]] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(rows) < PARTICIPANTS:
            await SinkRunner(stack.settings, location=str(tmp_path), idle_exit=3).drain()
            rows = _latest_rows(tmp_path)
            await asyncio.sleep(1)
        # a tracker's last sync moves on with the clock in quarter hours: either side of the run
        expected = [_expected(stack, linked, at) for at in (started, time.time())]
        table = Dataset(str(tmp_path)).read_all(DEVICE)

    assert len(rows) == PARTICIPANTS
    for person, seen in rows.items():
        assert seen in (expected[0][person], expected[1][person]), person
    assert set(table["src_id"]) == {Provider.FITBIT.value, Provider.GOOGLE_HEALTH.value}
    # a Fitbit device without ``batteryLevel`` is a device (a row with a null level), not a reject
    assert any(level is None for seen in rows.values() for _, _, _, level, _ in seen)
    assert table["device_id"].str.starts_with("D").all()  # pseudonyms, never the vendor's ids

