"""The simulated Google Health list calls read the filter with their own parser, refuse what
the grammar does not allow, and cut pages with opaque tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.vendors import google_health_spec as spec
from models.providers import Provider
from tests.connectors.simulator.conftest import Sim


def _day_filter(field: str, day: datetime) -> str:
    return f'{field} >= "{day:%Y-%m-%dT%H:%M:%SZ}" AND {field} < "{day + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"'


async def test_a_list_must_filter_on_its_data_types_field(sim: Sim) -> None:
    day = datetime.combine(sim.world.last_day, datetime.min.time(), UTC)
    path, auth = spec.DATA_POINTS_PATH.format(data_type="heart-rate"), sim.bearer(Provider.GOOGLE_HEALTH)
    right = await sim.http.get(path, headers=auth, params={
        "filter": _day_filter("heart_rate.sample_time.physical_time", day), "page_size": "5"})
    assert right.status == 200 and len((await right.json())["dataPoints"]) == 5
    wrong = await sim.http.get(path, headers=auth, params={"filter": _day_filter("steps.interval.start_time", day)})
    assert wrong.status == 400 and (await wrong.json())["error"]["status"] == "INVALID_ARGUMENT"
    unbounded = await sim.http.get(path, headers=auth, params={"filter": "heart_rate.sample_time.physical_time"})
    assert unbounded.status == 400
    sleep = await sim.http.get(spec.DATA_POINTS_PATH.format(data_type="sleep"), headers=auth,
                               params={"filter": _day_filter("sleep.interval.end_time", day)})
    assert sleep.status == 400  # sleep: only its civil end time


async def test_page_tokens_cover_the_day_once_and_page_size_is_capped(sim: Sim) -> None:
    day = datetime.combine(sim.world.last_day, datetime.min.time(), UTC)
    path, auth = spec.DATA_POINTS_PATH.format(data_type="steps"), sim.bearer(Provider.GOOGLE_HEALTH)
    query = {"filter": _day_filter(spec.FILTER_FIELDS["steps"], day), "page_size": "100"}
    names, token, pages = [], None, 0
    while True:
        pages += 1
        page = await (await sim.http.get(path, headers=auth, params={**query, **(
            {"page_token": token} if token else {})})).json()
        names += [point["name"] for point in page["dataPoints"]]
        token = page.get("nextPageToken")
        if not token:
            break
    whole = await (await sim.http.get(path, headers=auth, params={**query, "page_size": "999999"})).json()
    assert "nextPageToken" not in whole  # cut to MAX_PAGE_SIZE (more than a day of minutes), not refused
    assert names == [point["name"] for point in whole["dataPoints"]] and len(set(names)) == len(names)
    assert len(names) > 100 and pages == -(-len(names) // 100)  # full pages, then the rest
    broken = await sim.http.get(path, headers=auth, params={**query, "page_token": "%%%"})
    assert broken.status == 400
