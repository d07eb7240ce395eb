"""The operator's side door: statistics, a revocation as if the participant did it, and samples
withdrawn and restored as if the participant deleted them at the vendor."""

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


async def test_delete_and_restore(sim: Sim) -> None:
    account = sim.account(Provider.GOOGLE_HEALTH)
    interval = {"participant_id": account.participant_id, "data_type": "steps", "start": 1000, "end": 1600}
    answer = await sim.http.post("/_sim/delete", json=interval)
    assert answer.status == 200 and await answer.json() == {"deleted": True}
    assert sim.world.deleted(account.participant_id, "steps") == [(1000.0, 1600.0)]
    (change,) = sim.world.take_changes()
    assert (change.account, change.operation, change.start, change.end) == (account, "DELETE", 1000.0, 1600.0)
    answer = await sim.http.post("/_sim/restore", json=interval)
    assert answer.status == 200 and await answer.json() == {"restored": True}
    assert sim.world.deleted(account.participant_id, "steps") == []
    assert [c.operation for c in sim.world.take_changes()] == ["UPSERT"]
    assert (await sim.http.post("/_sim/restore", json=interval)).status == 404  # nothing deleted any more
    assert (await (await sim.http.get("/_sim/stats")).json())["deletions"] == 1


async def test_delete_refuses_what_it_cannot_read(sim: Sim) -> None:
    pid = sim.account(Provider.GOOGLE_HEALTH).participant_id
    for bad in ({"participant_id": pid}, {"participant_id": pid, "data_type": "steps", "start": "x", "end": 2},
                {"participant_id": pid, "data_type": "steps", "start": 5, "end": 5},
                {"participant_id": pid, "data_type": "steps", "start": 1, "end": 2, "provider": "garmin"}):
        assert (await sim.http.post("/_sim/delete", json=bad)).status == 400, bad
    assert (await sim.http.post("/_sim/delete", data=b"not json")).status == 400
    nobody = {"participant_id": "P-nobody", "data_type": "steps", "start": 1, "end": 2}
    assert (await sim.http.post("/_sim/delete", json=nobody)).status == 404  # no account is made for it
    assert sim.world.find_account(Provider.GOOGLE_HEALTH, "P-nobody") is None
    assert sim.world.deletions == {}


async def test_an_outage_answers_503_everywhere_but_the_side_door_until_it_ends(sim: Sim) -> None:
    auth = sim.bearer(Provider.FITBIT)
    before = (await sim.http.get(fitbit_spec.PROFILE_PATH, headers=auth)).status
    assert before != 503
    assert (await sim.http.post("/_sim/outage", json={"seconds": 60})).status == 200
    assert sim.world.faults.down()
    during = await sim.http.get(fitbit_spec.PROFILE_PATH, headers=auth)
    assert during.status == 503 and during.content_type == "text/html"  # a load balancer's page, not JSON
    assert (await sim.http.post("/oauth2/token", data={"grant_type": "refresh_token"})).status == 503
    stats = await (await sim.http.get("/_sim/stats")).json()  # the operator still gets through
    assert stats["outages"] == 1 and stats["outage_503"] == 2
    assert (await sim.http.post("/_sim/outage", json={"seconds": 0})).status == 200
    assert (await sim.http.get(fitbit_spec.PROFILE_PATH, headers=auth)).status == before
    for bad in ({"seconds": -1}, {"seconds": "60"}, {"seconds": True}, {}):
        assert (await sim.http.post("/_sim/outage", json=bad)).status == 400
