"""A simulator app on an aiohttp test server, with a tiny world and a way to get a bearer token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.simulator.app import build_simulator_app
from connectors.simulator.cohort import SyntheticCohort
from connectors.simulator.world import Account, World
from connectors.vendors.endpoints import Credentials
from models.providers import Provider

CLIENTS = {p: Credentials(f"{p.value}-client", f"{p.value}-secret") for p in Provider}


@dataclass
class Sim:
    http: TestClient  # type: ignore[type-arg]
    world: World

    def account(self, provider: Provider, n: int = 0) -> Account:
        return self.world.account(provider, self.world.cohort.participant_ids[n])

    def bearer(self, provider: Provider, n: int = 0) -> dict[str, str]:
        access, _, _ = self.world.issue_tokens(self.account(provider, n), "scope")
        return {"Authorization": f"Bearer {access}"}


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    world = World(SyntheticCohort(2, seed=5), days=2, late_share=0.0)
    async with TestClient(TestServer(build_simulator_app(world, CLIENTS))) as http:
        yield Sim(http, world)
