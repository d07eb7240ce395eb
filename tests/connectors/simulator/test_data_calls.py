"""Every data call passes the token check, the grant's scope (403), the vendor's quota (headers,
429) and the faults, in the vendor's own shapes, and is counted."""

from __future__ import annotations

import asyncio

from connectors.simulator.dialects import DIALECTS
from connectors.vendors import fitbit_spec, google_health_spec
from models.providers import Provider
from tests.connectors.simulator.conftest import Sim


def _bearer(sim: Sim, provider: Provider, scope: str | None = None) -> dict[str, str]:
    access, _, _ = sim.world.issue_tokens(sim.account(provider), DIALECTS[provider].scope if scope is None else scope)
    return {"Authorization": f"Bearer {access}"}


async def test_tokens_are_checked_per_vendor(sim: Sim) -> None:
    assert (await sim.http.get(fitbit_spec.PROFILE_PATH)).status == 401
    google_token = _bearer(sim, Provider.GOOGLE_HEALTH)
    wrong_vendor = await sim.http.get(fitbit_spec.PROFILE_PATH, headers=google_token)
    assert wrong_vendor.status == 401
    assert (await wrong_vendor.json())["errors"][0]["errorType"] == "invalid_token"
    sim.world.token_lifetime_s = 0.01
    expired = _bearer(sim, Provider.GOOGLE_HEALTH)
    await asyncio.sleep(0.02)
    answer = await sim.http.get(google_health_spec.IDENTITY_PATH, headers=expired)
    body = await answer.json()  # Google's own answer: UNAUTHENTICATED, nothing says expired
    assert answer.status == 401 and body["error"]["status"] == "UNAUTHENTICATED" and "expired" not in str(body)
    assert (await sim.http.get(google_health_spec.IDENTITY_PATH, headers=google_token)).status == 200


async def test_quota_headers_and_429s(sim: Sim) -> None:
    auth = _bearer(sim, Provider.FITBIT)
    first = await sim.http.get(fitbit_spec.PROFILE_PATH, headers=auth)
    assert first.headers[fitbit_spec.RATE_LIMIT_LIMIT] == "150"
    assert first.headers[fitbit_spec.RATE_LIMIT_REMAINING] == "149"
    sim.world.quota.fitbit_per_hour = 1
    over = await sim.http.get(fitbit_spec.PROFILE_PATH, headers=auth)
    assert over.status == 429 and int(over.headers["Retry-After"]) == int(over.headers[fitbit_spec.RATE_LIMIT_RESET])
    assert (await over.json())["errors"][0]["message"] == "Too Many Requests"
    assert sim.world.stats["violations_fitbit"] == 1 and sim.world.stats["requests_fitbit"] == 1
    sim.world.quota.google_per_minute = 0
    google = await sim.http.get(google_health_spec.IDENTITY_PATH, headers=_bearer(sim, Provider.GOOGLE_HEALTH))
    assert google.status == 429 and "Retry-After" in google.headers
    assert (await google.json())["error"]["status"] == "RESOURCE_EXHAUSTED"


async def test_faults_are_injected_after_the_checks(sim: Sim) -> None:
    sim.world.faults.error_rate = 1.0
    answer = await sim.http.get(fitbit_spec.PROFILE_PATH, headers=_bearer(sim, Provider.FITBIT))
    assert answer.status in (500, 502, 503) and fitbit_spec.RATE_LIMIT_REMAINING in answer.headers
    assert (await sim.http.get(fitbit_spec.PROFILE_PATH)).status == 401  # no token: refused before any fault


async def test_subscribing_marks_the_account(sim: Sim) -> None:
    path = google_health_spec.SUBSCRIPTIONS_PATH.format(project="p", subscriber="s")
    answer = await sim.http.post(path, headers=_bearer(sim, Provider.GOOGLE_HEALTH), json={})
    assert answer.status == 201 and sim.account(Provider.GOOGLE_HEALTH).subscribed


async def test_a_grant_without_the_scope_is_refused_before_it_counts_against_the_quota(sim: Sim) -> None:
    refused = await sim.http.get(fitbit_spec.PROFILE_PATH, headers=_bearer(sim, Provider.FITBIT, "activity"))
    assert refused.status == 403 and (await refused.json())["errors"][0]["errorType"] == "insufficient_scope"
    assert fitbit_spec.RATE_LIMIT_REMAINING not in refused.headers and sim.world.stats["scope_refusals_fitbit"] == 1
    answer = await sim.http.get(fitbit_spec.PROFILE_PATH, headers=_bearer(sim, Provider.FITBIT, "profile"))
    assert answer.status == 200 and answer.headers[fitbit_spec.RATE_LIMIT_REMAINING] == "149"
    assert (await sim.http.get(google_health_spec.IDENTITY_PATH,
                               headers=_bearer(sim, Provider.GOOGLE_HEALTH, "openid"))).status == 403


async def test_two_calls_of_one_user_at_once_are_counted_as_overlapping(sim: Sim) -> None:
    sim.world.faults.latency_s = 0.1  # each answer takes a while, as a vendor's does
    auth = _bearer(sim, Provider.FITBIT)
    access, _, _ = sim.world.issue_tokens(sim.account(Provider.FITBIT, 1), DIALECTS[Provider.FITBIT].scope)
    other = {"Authorization": f"Bearer {access}"}
    for _ in range(2):  # one after the other: no overlap
        assert (await sim.http.get(fitbit_spec.PROFILE_PATH, headers=auth)).status == 200
    assert sim.world.stats["overlapping_requests_fitbit"] == 0
    # two participants at once: no overlap either (the limit is per user)
    answers = await asyncio.gather(sim.http.get(fitbit_spec.PROFILE_PATH, headers=auth),
                                   sim.http.get(fitbit_spec.PROFILE_PATH, headers=other))
    assert [a.status for a in answers] == [200, 200] and sim.world.stats["overlapping_requests_fitbit"] == 0
    answers = await asyncio.gather(*(sim.http.get(fitbit_spec.PROFILE_PATH, headers=auth) for _ in range(3)))
    assert [a.status for a in answers] == [200] * 3
    assert sim.world.stats["overlapping_requests_fitbit"] == 2  # the second and third found one running
    assert sim.world.answering == {}  # nothing left behind once answered
