"""The simulator as a service inside an asyncio program: a URL on a free port, the world the
options describe (its Google subscription policy the settings'), webhook delivery only when there
is somewhere to deliver to, signed with the key whose keyset it serves."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from connectors.simulator.service import SimulatorOptions, running_simulator
from connectors.vendors.google_health_notifications import KEYSET_PATH, Verdict, parse_keyset, verify_signature
from models.providers import Provider
from runtime.settings import Settings


async def test_running_simulator(tmp_path: Path) -> None:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path})
    options = SimulatorOptions(participants=3, days=2, error_rate=0.5, google_project_limit=7)
    async with running_simulator(settings, options) as sim, aiohttp.ClientSession() as session:
        assert sim.url.startswith("http://127.0.0.1:") and sim.delivery is None
        assert len(sim.world.cohort.participant_ids) == 3 and sim.world.faults.error_rate == 0.5
        assert sim.world.quota.google_project_per_minute == 7
        async with session.get(f"{sim.url}/_sim/stats") as answer:
            assert answer.status == 200 and (await answer.json())["accounts"] == 0
    with_webhooks = SimulatorOptions(participants=1, days=1, webhook_base="http://127.0.0.1:9/", sync_interval_s=60)
    async with running_simulator(settings, with_webhooks) as sim:
        assert sim.delivery is not None and sim.delivery.urls == {
            Provider.FITBIT: "http://127.0.0.1:9/webhooks/fitbit",
            Provider.GOOGLE_HEALTH: "http://127.0.0.1:9/webhooks/google_health"}


async def test_the_served_keyset_verifies_what_the_delivery_signs(tmp_path: Path) -> None:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path, "google_subscription_policy": "manual"})
    options = SimulatorOptions(participants=1, days=1, webhook_base="http://127.0.0.1:9/", sync_interval_s=60)
    async with running_simulator(settings, options) as sim, aiohttp.ClientSession() as session:
        assert sim.world.subscription_policy == "manual"  # the gateway's setting, the vendor's behaviour
        assert sim.keyset_url == sim.url + KEYSET_PATH
        async with session.get(sim.keyset_url) as answer:
            keyset = parse_keyset(await answer.read())
        assert sim.delivery is not None
        body = b'[{"data": {}}]'
        assert verify_signature(body, sim.delivery.signer.sign(body), keyset) is Verdict.VALID
    async with running_simulator(settings.with_overrides(google_subscription_policy="automatic"), options) as sim:
        assert sim.world.subscription_policy == "automatic"
