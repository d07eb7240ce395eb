"""The operator's side door: statistics, and a revocation as if the participant did it."""

from __future__ import annotations

from connectors.vendors import fitbit_spec
from models.providers import Provider
from tests.connectors.simulator.conftest import Sim


async def test_stats_and_revoke(sim: Sim) -> None:
    auth, account = sim.bearer(Provider.FITBIT), sim.account(Provider.FITBIT)
    stats = await (await sim.http.get("/_sim/stats")).json()
    assert stats["accounts"] == 1 and stats["rate_limit_violations"] == 0 and stats["fully_synced"] is True
    answer = await sim.http.post("/_sim/revoke", json={"provider": "fitbit", "participant": account.participant_id})
    assert (await answer.json()) == {"revoked": True} and account.revoked
    assert (await sim.http.get(fitbit_spec.PROFILE_PATH, headers=auth)).status == 401
    assert (await (await sim.http.get("/_sim/stats")).json())["revocations"] == 1
