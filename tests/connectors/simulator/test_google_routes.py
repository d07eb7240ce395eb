"""The simulated Google Health list calls read the filter with their own parser of the documented
grammar (members by record kind, literals by member, OR for sleep only) and refuse the rest as the
API does; they list newest first, size pages as documented, sometimes answer a first page empty
with a token; the paired devices; and every call needs its data type's scope."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from connectors.simulator import google_routes
from connectors.simulator.app import build_simulator_app
from connectors.simulator.cohort import SyntheticCohort
from connectors.simulator.devices import paired_devices
from connectors.simulator.dialects import GOOGLE_HEALTH
from connectors.simulator.world import World
from connectors.vendors import google_health_spec as spec
from models.providers import Provider
from tests.connectors.simulator.conftest import CLIENTS, Sim

P = Provider.GOOGLE_HEALTH


def _bearer(sim: Sim, scope: str = GOOGLE_HEALTH.scope, n: int = 0) -> dict[str, str]:
    access, _, _ = sim.world.issue_tokens(sim.account(P, n), scope)
    return {"Authorization": f"Bearer {access}"}


@contextlib.asynccontextmanager
async def _serving(days: int) -> AsyncIterator[Sim]:
    world = World(SyntheticCohort(1, seed=8), days=days, late_share=0.0)
    async with TestClient(TestServer(build_simulator_app(world, CLIENTS))) as http:
        yield Sim(http, world)


def _range(member: str, low: str, high: str) -> str:
    return f'{member} >= "{low}" AND {member} < "{high}"'


def _instants(day: date) -> tuple[str, str]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    return f"{start:%Y-%m-%dT%H:%M:%SZ}", f"{start + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"


async def _list(sim: Sim, data_type: str, filter_: str, auth: dict[str, str] | None = None,
                **query: str) -> tuple[int, Any]:
    """One list call: its status and body (``query``: page_size, page_token)."""
    answer = await sim.http.get(spec.DATA_POINTS_PATH.format(data_type=data_type), headers=auth or _bearer(sim),
                                params={"filter": filter_, **query})
    return answer.status, await answer.json()


async def _all_pages(sim: Sim, data_type: str, filter_: str, **query: str) -> tuple[list[Any], int]:
    """Every point the filter selects, following tokens through empty pages; and the page count."""
    points: list[Any] = []
    token, pages = None, 0
    while True:
        paged = {**query, "page_token": token} if token else query
        status, page = await _list(sim, data_type, filter_, None, **paged)
        assert status == 200, page
        points, pages = points + page.get("dataPoints", []), pages + 1
        token = page.get("nextPageToken")
        if not token:
            return points, pages


def _member_error(body: Any) -> bool:
    error = body["error"]
    return bool(error["status"] == "INVALID_ARGUMENT" and error["details"][0]["reason"] == spec.FILTER_MEMBER_REASON)


async def test_each_data_type_filters_on_the_members_of_its_record_kind(sim: Sim) -> None:
    day = sim.world.last_day
    low, high = _instants(day)
    civil = (f"{day}T00:00:00", f"{day + timedelta(days=1)}T00:00:00")
    dates = (day.isoformat(), (day + timedelta(days=1)).isoformat())
    accepted = {
        "steps": [("steps.interval.start_time", (low, high)), ("steps.interval.civil_start_time", civil)],
        "heart-rate": [("heart_rate.sample_time.physical_time", (low, high)),
                       ("heart_rate.sample_time.civil_time", (day.isoformat(), dates[1]))],
        "daily-resting-heart-rate": [("daily_resting_heart_rate.date", dates)],
        "sleep": [("sleep.interval.end_time", (low, high)), ("sleep.interval.civil_end_time", civil)],
    }
    for data_type, members in accepted.items():
        for member, (start, end) in members:
            points, _ = await _all_pages(sim, data_type, _range(member, start, end))
            assert points, member
    # the members each type does not have: daily and sleep reject interval.start_time (as users found)
    for data_type, member in [("daily-resting-heart-rate", "daily_resting_heart_rate.interval.start_time"),
                              ("sleep", "sleep.interval.start_time"), ("heart-rate", "heart_rate.interval.start_time"),
                              ("steps", "heart_rate.sample_time.physical_time"), ("steps", "steps.date")]:
        status, body = await _list(sim, data_type, _range(member, low, high))
        assert status == 400 and _member_error(body), (data_type, member)
        assert spec.FILTER_MEMBER_REASON in body["error"]["message"]


async def test_literals_must_be_of_their_members_kind_and_only_sleep_takes_or(sim: Sim) -> None:
    day = sim.world.last_day
    low, high = _instants(day)
    for data_type, filter_ in [
        ("daily-resting-heart-rate", _range("daily_resting_heart_rate.date", low, high)),  # a date, not an instant
        ("steps", _range("steps.interval.start_time", day.isoformat(), (day + timedelta(days=1)).isoformat())),
        ("sleep", _range("sleep.interval.civil_end_time", low, high)),  # civil: no zone
        ("heart-rate", "heart_rate.sample_time.physical_time"),  # no bound at all
        ("heart-rate", f'heart_rate.sample_time.physical_time > "{low}"'),  # only >= and <
        ("steps", f'{_range("steps.interval.start_time", low, high)} OR steps.interval.start_time >= "{low}"'),
        ("steps", f'(steps.interval.start_time >= "{low}"'),
    ]:
        status, body = await _list(sim, data_type, filter_)
        assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT", filter_
        assert "details" not in body["error"]  # a malformed filter, not a wrong member
    member = "sleep.interval.civil_end_time"
    nights = [_range(member, f"{d}T00:00:00", f"{d + timedelta(days=1)}T00:00:00")
              for d in (day - timedelta(days=1), day)]
    one = [(await _all_pages(sim, "sleep", night))[0] for night in nights]
    both, _ = await _all_pages(sim, "sleep", f"({nights[0]}) OR ({nights[1]})")
    assert both == one[1] + one[0] and both  # newest first


async def test_civil_and_physical_members_select_by_local_and_utc_time(sim: Sim) -> None:
    account, day = sim.account(P), sim.world.last_day
    steps, _ = sim.world.series(account.participant_id, day)
    local, _ = await _all_pages(sim, "steps", _range("steps.interval.civil_start_time", f"{day}T00:00:00",
                                                     f"{day + timedelta(days=1)}T00:00:00"))
    assert sum(int(p["steps"]["count"]) for p in local) == sum(steps)  # the local day, exactly
    utc, _ = await _all_pages(sim, "steps", _range("steps.interval.start_time", *_instants(day)))
    assert {p["steps"]["interval"]["startTime"][:10] for p in utc} == {day.isoformat()}
    resting, _ = await _all_pages(sim, "daily-resting-heart-rate", _range(
        "daily_resting_heart_rate.date", sim.world.first_day.isoformat(), (day + timedelta(days=1)).isoformat()))
    assert [p["dailyRestingHeartRate"]["date"]["day"] for p in resting] == [day.day, sim.world.first_day.day]
    assert resting[0]["dailyRestingHeartRate"]["beatsPerMinute"] == str(
        sim.world.cohort.resting_heart_rate(account.participant_id, day))


async def test_lists_come_newest_first_and_tokens_cover_them_once() -> None:
    async with _serving(days=3) as sim:
        first, last = sim.world.first_day, sim.world.last_day
        member = "heart_rate.sample_time.physical_time"
        whole = _range(member, _instants(first)[0], _instants(last)[1])
        points, pages = await _all_pages(sim, "heart-rate", whole, page_size="700")
        times = [p["heartRate"]["sampleTime"]["physicalTime"] for p in points]
        assert times == sorted(times, reverse=True) and len(set(times)) == len(times) > 700 * 3
        assert pages >= -(-len(times) // 700)
        nights, _ = await _all_pages(sim, "sleep", "")
        ends = [n["sleep"]["interval"]["endTime"] for n in nights]
        assert ends == sorted(ends, reverse=True) and len(ends) >= 2


async def test_page_sizes_default_cap_and_the_practical_limit(monkeypatch: Any) -> None:
    monkeypatch.setattr(google_routes, "_EMPTY_FIRST_SHARE", 0.0)
    async with _serving(days=40) as sim:
        member = "heart_rate.sample_time.physical_time"
        days = _range(member, _instants(sim.world.first_day)[0], _instants(sim.world.last_day)[1])
        assert len((await _list(sim, "heart-rate", days))[1]["dataPoints"]) == 1440  # the default
        assert len((await _list(sim, "heart-rate", days, page_size="999999"))[1]["dataPoints"]) == 5000  # in practice
        assert len((await _list(sim, "heart-rate", days, page_size="300"))[1]["dataPoints"]) == 300
        status, sleep = await _list(sim, "sleep", "", page_size="100")
        assert status == 200 and len(sleep["dataPoints"]) == 25 and "nextPageToken" in sleep  # sleep: 25 at most
        assert len((await _list(sim, "sleep", ""))[1]["dataPoints"]) == 25  # and by default
        for broken in ({"page_token": "%%%"}, {"page_size": "-1"}, {"page_size": "many"}):
            assert (await _list(sim, "steps", "", None, **broken))[0] == 400


async def test_some_first_pages_are_empty_and_carry_a_token_to_the_real_first_page() -> None:
    async with _serving(days=40) as sim:
        empty, member = 0, "steps.interval.start_time"
        for offset in range((sim.world.last_day - sim.world.first_day).days + 1):
            day = sim.world.first_day + timedelta(days=offset)
            filter_ = _range(member, *_instants(day))
            status, first = await _list(sim, "steps", filter_)
            if "dataPoints" not in first:
                empty += 1
                assert status == 200 and first["nextPageToken"]
                assert (await _list(sim, "steps", filter_))[1] == first  # the same ones, always
                points, pages = await _all_pages(sim, "steps", filter_)
                direct = (await _list(sim, "steps", filter_, page_token=first["nextPageToken"]))[1]["dataPoints"]
                assert points == direct and pages == 2 and points
        assert 1 <= empty <= 12  # a share of about a tenth of 40 first pages


async def test_paired_devices_page_by_five_and_up_to_a_hundred(sim: Sim) -> None:
    account = sim.account(P)
    answer = await sim.http.get(spec.PAIRED_DEVICES_PATH, headers=_bearer(sim))
    body = await answer.json()
    assert answer.status == 200 and "nextPageToken" not in body
    devices = paired_devices(sim.world, account, datetime.now(UTC).timestamp())
    assert [d["name"] for d in body["pairedDevices"]] == [f"users/me/pairedDevices/{d.device_id}" for d in devices]
    one = await (await sim.http.get(spec.PAIRED_DEVICES_PATH, headers=_bearer(sim), params={"pageSize": "1"})).json()
    assert len(one["pairedDevices"]) == 1 and ("nextPageToken" in one) == (len(devices) > 1)


async def test_each_call_needs_its_scope_and_says_so_as_google_does(sim: Sim) -> None:
    day = sim.world.last_day
    without_sleep = " ".join(s for s in spec.SCOPES if s != spec.SLEEP_SCOPE)
    auth = _bearer(sim, without_sleep)
    status, refused = await _list(sim, "sleep", _range(spec.FILTER_FIELDS["sleep"], f"{day}T00:00:00",
                                                        f"{day + timedelta(days=1)}T00:00:00"), auth)
    assert status == 403 and refused["error"]["status"] == "PERMISSION_DENIED" and refused["error"]["code"] == 403
    assert refused["error"]["details"] == [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                            "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "domain": "googleapis.com",
                                            "metadata": {"service": "health.googleapis.com"}}]
    assert (await _list(sim, "steps", _range(spec.FILTER_FIELDS["steps"], *_instants(day)), auth))[0] == 200
    settings_only = _bearer(sim, spec.SETTINGS_SCOPE)
    assert (await sim.http.get(spec.IDENTITY_PATH, headers=settings_only)).status == 200  # any read scope will do
    assert (await sim.http.get(spec.PAIRED_DEVICES_PATH, headers=_bearer(sim, spec.ACTIVITY_SCOPE))).status == 403
    assert sim.world.stats["scope_refusals_google_health"] == 2
