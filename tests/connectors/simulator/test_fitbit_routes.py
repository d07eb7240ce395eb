"""The simulated Fitbit data calls: the profile's zone, intraday as far as the device synced, the
day's activity summary and the devices, Fitbit's own validation errors, and the scope each call
needs (403 ``insufficient_scope`` as Fitbit words it)."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.simulator.dialects import FITBIT
from connectors.vendors import fitbit_spec
from models.providers import Provider
from tests.connectors.simulator.conftest import Sim

P = Provider.FITBIT


def _bearer(sim: Sim, scope: str = FITBIT.scope) -> dict[str, str]:
    access, _, _ = sim.world.issue_tokens(sim.account(P), scope)
    return {"Authorization": f"Bearer {access}"}


async def test_profile_and_a_day_of_intraday_heart_rate(sim: Sim) -> None:
    auth, account = _bearer(sim), sim.account(P)
    user = (await (await sim.http.get(fitbit_spec.PROFILE_PATH, headers=auth)).json())["user"]
    assert (user["encodedId"], user["timezone"]) == (account.user_id, account.timezone)
    path, _ = fitbit_spec.DAY_PATHS["activities-heart-intraday"]
    day = sim.world.last_day
    body = await (await sim.http.get(path.format(day=day.isoformat()), headers=auth)).json()
    _, rates = sim.world.series(account.participant_id, day)
    assert len(body["activities-heart-intraday"]["dataset"]) == sum(1 for r in rates if r)
    account.synced_until = datetime.combine(day, datetime.min.time(), UTC).timestamp() - 86400  # not yet synced
    later = await (await sim.http.get(path.format(day=day.isoformat()), headers=auth)).json()
    assert later["activities-heart-intraday"]["dataset"] == []


async def test_the_activity_summary_agrees_with_the_intraday_steps(sim: Sim) -> None:
    auth, day = _bearer(sim), sim.world.last_day.isoformat()
    summary = await (await sim.http.get(fitbit_spec.ACTIVITY_SUMMARY_PATH.format(day=day), headers=auth)).json()
    path, _ = fitbit_spec.DAY_PATHS["activities-steps-intraday"]
    intraday = await (await sim.http.get(path.format(day=day), headers=auth)).json()
    assert summary["summary"]["steps"] == int(intraday["activities-steps"][0]["value"]) > 0
    assert set(summary["summary"]) >= {"activeScore", "activityCalories", "caloriesBMR", "caloriesOut", "distances",
                                       "elevation", "fairlyActiveMinutes", "floors", "heartRateZones",
                                       "lightlyActiveMinutes", "marginalCalories", "restingHeartRate",
                                       "sedentaryMinutes", "steps", "veryActiveMinutes"}
    assert (await sim.http.get(fitbit_spec.ACTIVITY_SUMMARY_PATH.format(day="2026-02-30"), headers=auth)).status == 400


async def test_devices_are_a_list(sim: Sim) -> None:
    answer = await sim.http.get(fitbit_spec.DEVICES_PATH, headers=_bearer(sim))
    devices = await answer.json()
    assert answer.status == 200 and isinstance(devices, list) and devices[0]["type"] == "TRACKER"
    assert sim.world.stats["devices_served"] == len(devices)


async def test_bad_dates_and_detail_levels_are_fitbit_validation_errors(sim: Sim) -> None:
    auth = _bearer(sim)
    for path in ("/1/user/-/activities/steps/date/2026-13-01/1d/1min.json",
                 "/1/user/-/activities/steps/date/2026-11-01/1d/2min.json", "/1.2/user/-/sleep/date/today.json"):
        answer = await sim.http.get(path, headers=auth)
        assert answer.status == 400 and (await answer.json())["errors"][0]["errorType"] == "validation"
    assert (await sim.http.get("/1/user/-/activities/floors/date/2026-11-01/1d/1min.json", headers=auth)).status == 404


async def test_each_call_needs_its_scope(sim: Sim) -> None:
    day = sim.world.last_day.isoformat()
    auth = _bearer(sim, "activity profile")
    needs = {fitbit_spec.PROFILE_PATH: None, fitbit_spec.ACTIVITY_SUMMARY_PATH.format(day=day): None,
             fitbit_spec.DAY_PATHS["activities-steps-intraday"][0].format(day=day): None,
             fitbit_spec.DAY_PATHS["activities-heart-intraday"][0].format(day=day): "heartrate",
             fitbit_spec.SLEEP_PATH.format(day=day): "sleep", fitbit_spec.DEVICES_PATH: "settings"}
    for path, missing in needs.items():
        answer = await sim.http.get(path, headers=auth)
        if missing is None:
            assert answer.status == 200, path
            continue
        assert answer.status == 403 and await answer.json() == {"errors": [{
            "errorType": "insufficient_scope",
            "message": f"This application does not have permission to access {missing} data. Visit "
                       "https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization "
                       "process."}], "success": False}, path
    assert (await sim.http.get(fitbit_spec.PROFILE_PATH, headers=_bearer(sim, "sleep"))).status == 403
