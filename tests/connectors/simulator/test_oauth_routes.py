"""The simulated OAuth: the consent page's demands and its scope checkboxes, PKCE at the code
exchange, client authentication, single-use codes and refresh tokens, revoke; each vendor's error
shape; a grant is the scopes left ticked, at the exchange and every refresh after it."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.oauth import pkce_pair
from connectors.simulator.dialects import DIALECTS
from connectors.vendors import google_health_spec
from models.providers import Provider
from tests.connectors.simulator.conftest import CLIENTS, Sim

REDIRECT = "http://127.0.0.1:1/cb"


def _authorize(provider: Provider, challenge: str, **extra: str) -> dict[str, str]:
    query = {"client_id": CLIENTS[provider].client_id, "response_type": "code", "redirect_uri": REDIRECT,
             "code_challenge": challenge, "code_challenge_method": "S256", "state": "st",
             "scope": DIALECTS[provider].scope}
    if provider is Provider.GOOGLE_HEALTH:
        query["access_type"] = "offline"
    return {**query, **extra}


async def _code(sim: Sim, provider: Provider, challenge: str, scopes: list[str] | None = None) -> str:
    """Press Allow as the participant: the URL's fields back, or ``scopes`` as the ticked boxes."""
    participant = sim.account(provider).participant_id
    form = [(k, v) for k, v in _authorize(provider, challenge).items() if scopes is None or k != "scope"]
    form += [("scope", s) for s in scopes or []] + [("participant", participant), ("decision", "allow")]
    answer = await sim.http.post(DIALECTS[provider].authorize_path, data=form, allow_redirects=False)
    assert answer.status == 302
    return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]


def _basic(provider: Provider, secret: str | None = None) -> dict[str, str]:
    client = CLIENTS[provider]
    value = base64.b64encode(f"{client.client_id}:{secret or client.client_secret}".encode()).decode()
    return {"Authorization": f"Basic {value}"}


async def _token(sim: Sim, provider: Provider, form: dict[str, str], secret: str | None = None) -> Any:
    answer = await sim.http.post(DIALECTS[provider].token_path, data=form, headers=_basic(provider, secret))
    return answer.status, await answer.json()


async def test_the_consent_page_insists_on_our_client_pkce_and_offline_access(sim: Sim) -> None:
    _, challenge = pkce_pair()
    for provider, query, problem in [
        (Provider.FITBIT, _authorize(Provider.FITBIT, challenge, client_id="someone"), "unknown client_id"),
        (Provider.FITBIT, _authorize(Provider.FITBIT, "short"), "PKCE is required"),
        (Provider.GOOGLE_HEALTH, _authorize(Provider.GOOGLE_HEALTH, challenge, access_type="online"),
         "access_type=offline"),
    ]:
        answer = await sim.http.get(DIALECTS[provider].authorize_path, params=query)
        assert answer.status == 400 and problem in await answer.text()
    page = await sim.http.get(DIALECTS[Provider.GOOGLE_HEALTH].authorize_path,
                              params=_authorize(Provider.GOOGLE_HEALTH, challenge))
    assert page.status == 200 and "Google Health (simulated)" in await page.text()
    denied = await sim.http.post(DIALECTS[Provider.FITBIT].authorize_path, allow_redirects=False, data={
        **_authorize(Provider.FITBIT, challenge), "participant": "P1", "decision": "deny"})
    assert parse_qs(urlsplit(denied.headers["Location"]).query) == {"error": ["access_denied"], "state": ["st"]}


async def test_code_exchange_checks_pkce_and_the_client_and_codes_are_single_use(sim: Sim) -> None:
    verifier, challenge = pkce_pair()
    code = await _code(sim, Provider.FITBIT, challenge)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    status, body = await _token(sim, Provider.FITBIT, form, secret="wrong")
    assert (status, body["errors"][0]["errorType"]) == (401, "invalid_client")
    status, body = await _token(sim, Provider.FITBIT, {**form, "code_verifier": pkce_pair()[0]})
    assert (status, body["errors"][0]["errorType"]) == (400, "invalid_grant")  # and the code is spent
    code = await _code(sim, Provider.FITBIT, challenge)
    status, body = await _token(sim, Provider.FITBIT, {**form, "code": code})
    assert status == 200 and body["user_id"] == sim.account(Provider.FITBIT).user_id
    assert body["scope"] == DIALECTS[Provider.FITBIT].scope and body["expires_in"] == 28800
    status, _ = await _token(sim, Provider.FITBIT, {**form, "code": code})
    assert status == 400


async def test_refresh_tokens_are_single_use_and_revoke_ends_the_grant(sim: Sim) -> None:
    verifier, challenge = pkce_pair()
    code = await _code(sim, Provider.GOOGLE_HEALTH, challenge)
    _, first = await _token(sim, Provider.GOOGLE_HEALTH, {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert "user_id" not in first and first["expires_in"] == 3600
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    status, second = await _token(sim, Provider.GOOGLE_HEALTH, refresh)
    assert status == 200 and second["refresh_token"] != first["refresh_token"]
    status, again = await _token(sim, Provider.GOOGLE_HEALTH, refresh)
    assert (status, again["error"]) == (400, "invalid_grant")
    status, odd = await _token(sim, Provider.GOOGLE_HEALTH, {"grant_type": "password"})
    assert (status, odd["error"]) == (400, "unsupported_grant_type")
    revoked = await sim.http.post(DIALECTS[Provider.GOOGLE_HEALTH].revoke_path,
                                  data={"token": second["access_token"]})
    assert revoked.status == 200 and sim.account(Provider.GOOGLE_HEALTH).revoked
    status, _ = await _token(sim, Provider.GOOGLE_HEALTH, {"grant_type": "refresh_token",
                                                           "refresh_token": second["refresh_token"]})
    assert status == 400 and sim.world.stats["refresh_rejected"] == 2


async def test_the_consent_page_lists_each_scope_ticked_and_a_grant_is_what_stayed_ticked(sim: Sim) -> None:
    provider, (verifier, challenge) = Provider.GOOGLE_HEALTH, pkce_pair()
    dialect = DIALECTS[provider]
    page = await (await sim.http.get(dialect.authorize_path, params=_authorize(provider, challenge))).text()
    boxes = re.findall(r'<input type="checkbox" name="scope" value="([^"]+)" checked> ([^<]+)</label>', page)
    assert [value for value, _ in boxes] == list(google_health_spec.SCOPES)
    assert [line for _, line in boxes] == [dialect.consent_line(s) for s in google_health_spec.SCOPES]
    assert "See your Google Health sleep data (sleep)" in page and 'type="hidden" name="scope"' not in page
    ticked = [s for s in google_health_spec.SCOPES if s != google_health_spec.SLEEP_SCOPE]
    code = await _code(sim, provider, challenge, scopes=ticked)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    status, body = await _token(sim, provider, form)
    assert status == 200 and body["scope"] == " ".join(ticked)
    assert sim.world.access[body["access_token"]].scope == " ".join(ticked)
    status, again = await _token(sim, provider, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert status == 200 and again["scope"] == " ".join(ticked)  # a refresh grants no more than the consent
    assert sim.world.stats["partial_consents"] == 1
    whole = await _code(sim, provider, challenge)  # the URL's one space-separated scope value: all of them
    _, full = await _token(sim, provider, {**form, "code": whole})
    assert full["scope"] == dialect.scope


async def test_nothing_ticked_is_a_refusal_and_a_request_for_no_known_scope_a_bad_one(sim: Sim) -> None:
    provider, (_, challenge) = Provider.FITBIT, pkce_pair()
    form = {k: v for k, v in _authorize(provider, challenge).items() if k != "scope"}
    answer = await sim.http.post(DIALECTS[provider].authorize_path, allow_redirects=False,
                                 data={**form, "participant": "P1", "decision": "allow"})
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["error"] == ["access_denied"]
    page = await sim.http.get(DIALECTS[provider].authorize_path, params={**form, "scope": "nutrition"})
    assert page.status == 400 and "invalid_scope" in await page.text()
