"""The simulated Fitbit data calls: the profile's zone, intraday as far as the device synced,
and Fitbit's own validation errors."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.vendors import fitbit_spec
from models.providers import Provider
from tests.connectors.simulator.conftest import Sim


async def test_profile_and_a_day_of_intraday_heart_rate(sim: Sim) -> None:
    auth, account = sim.bearer(Provider.FITBIT), sim.account(Provider.FITBIT)
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


async def test_bad_dates_and_detail_levels_are_fitbit_validation_errors(sim: Sim) -> None:
    auth = sim.bearer(Provider.FITBIT)
    for path in ("/1/user/-/activities/steps/date/2026-13-01/1d/1min.json",
                 "/1/user/-/activities/steps/date/2026-11-01/1d/2min.json", "/1.2/user/-/sleep/date/today.json"):
        answer = await sim.http.get(path, headers=auth)
        assert answer.status == 400 and (await answer.json())["errors"][0]["errorType"] == "validation"
    assert (await sim.http.get("/1/user/-/activities/floors/date/2026-11-01/1d/1min.json", headers=auth)).status == 404
