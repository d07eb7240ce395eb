"""The Fitbit client with no server: a ``requests`` transport that answers from a function
(like httpx's MockTransport) shows what goes on the wire, off the event loop, and how each
answer, or no answer, is classified."""

from __future__ import annotations

import base64
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from connectors.errors import AccessRevoked, RateLimited, ScopeMissing, TokenExpired, VendorUnavailable, quota_remaining
from connectors.vendors import fitbit_spec
from connectors.vendors.base import Identity
from connectors.vendors.endpoints import Credentials, Endpoints
from connectors.vendors.fitbit import FitbitWebClient

DAY = date(2026, 11, 20)
ENDPOINTS = Endpoints(api=fitbit_spec.API, authorize=fitbit_spec.AUTHORIZE_URL,
                      token=fitbit_spec.API + fitbit_spec.TOKEN_PATH, revoke=fitbit_spec.API + fitbit_spec.REVOKE_PATH)
CLIENT = Credentials("client-1", "secret-1")
Answer = tuple[int, Mapping[str, str], bytes] | BaseException


class CannedTransport(BaseAdapter):
    """Answers every request with ``answer(request)``: (status, headers, body), or an exception to raise."""

    def __init__(self, answer: Callable[[requests.PreparedRequest], Answer]) -> None:
        super().__init__()
        self.answer, self.seen = answer, list[requests.PreparedRequest]()
        self.threads: set[str] = set()

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        self.seen.append(request)
        self.threads.add(threading.current_thread().name)
        answer = self.answer(request)
        if isinstance(answer, BaseException):
            raise answer
        status, headers, body = answer
        response = requests.Response()
        response.status_code, response.headers, response._content = status, CaseInsensitiveDict(headers), body
        response.url, response.request, response.encoding = str(request.url), request, "utf-8"
        return response

    def close(self) -> None:
        pass


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Answer:
    return status, {"Content-Type": "application/json", **(headers or {})}, orjson.dumps(body)


def _tokens(**extra: Any) -> Answer:
    return _json(200, {"access_token": "access-2", "refresh_token": "refresh-2", "expires_in": 28800,
                       "scope": "activity heartrate sleep profile", "token_type": "Bearer", **extra})


def _error(status: int, error_type: str) -> Answer:
    return _json(status, {"errors": [{"errorType": error_type, "message": error_type}], "success": False})


@pytest.fixture
async def fitbit() -> AsyncIterator[Callable[[Callable[[requests.PreparedRequest], Answer]],
                                             tuple[FitbitWebClient, CannedTransport]]]:
    made: list[FitbitWebClient] = []

    def make(answer: Callable[[requests.PreparedRequest], Answer]) -> tuple[FitbitWebClient, CannedTransport]:
        transport = CannedTransport(answer)
        made.append(FitbitWebClient(endpoints=ENDPOINTS, credentials=CLIENT, timeout=5.0, transport=transport,
                                    threads=2))
        return made[-1], transport

    yield make
    for client in made:
        await client.aclose()


def _form(request: requests.PreparedRequest) -> dict[str, str]:
    body = request.body or ""
    return {k: v[0] for k, v in parse_qs(body if isinstance(body, str) else bytes(body).decode()).items()}


def _basic(request: requests.PreparedRequest) -> tuple[str, str]:
    scheme, _, value = str(request.headers["Authorization"]).partition(" ")
    assert scheme == "Basic"
    client_id, _, secret = base64.b64decode(value).decode().partition(":")
    return client_id, secret


def test_the_authorize_url_asks_for_our_scopes_with_pkce() -> None:
    client = FitbitWebClient(endpoints=ENDPOINTS, credentials=CLIENT, timeout=5.0,
                             transport=CannedTransport(lambda r: AssertionError("no HTTP call")))
    url = client.authorize_url(state="st", challenge="c" * 43, redirect_uri="https://example.org/cb")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(fitbit_spec.AUTHORIZE_URL + "?")
    assert query == {"response_type": "code", "client_id": "client-1", "redirect_uri": "https://example.org/cb",
                     "scope": "activity heartrate sleep settings profile", "state": "st", "code_challenge": "c" * 43,
                     "code_challenge_method": "S256"}


async def test_the_code_exchange_posts_the_verifier_with_basic_auth(fitbit: Any) -> None:
    client, transport = fitbit(lambda request: _tokens(user_id="ABC123"))
    tokens = await client.exchange_code("code-1", "verifier-1", "https://example.org/cb")
    assert (tokens.access_token, tokens.refresh_token, tokens.scope) == ("access-2", "refresh-2",
                                                                        "activity heartrate sleep profile")
    (request,) = transport.seen
    assert (request.method, request.url) == ("POST", ENDPOINTS.token)
    assert _basic(request) == ("client-1", "secret-1")
    assert _form(request) == {"grant_type": "authorization_code", "code": "code-1", "code_verifier": "verifier-1",
                              "redirect_uri": "https://example.org/cb", "client_id": "client-1"}
    assert all(name.startswith("fitbit") for name in transport.threads)  # never on the event loop


@pytest.mark.parametrize("data_type", fitbit_spec.DATA_TYPES)
async def test_a_day_is_one_bearer_get_kept_verbatim_with_its_headers(fitbit: Any, data_type: str) -> None:
    body = b'{"verbatim": [1, 2, 3]}'
    client, transport = fitbit(lambda request: (200, {"Fitbit-Rate-Limit-Remaining": "140"}, body))
    page = await client.fetch_day("access-1", data_type, DAY)
    (request,) = transport.seen
    path, detail = fitbit_spec.DAY_PATHS[data_type]
    assert request.method == "GET" and request.url == fitbit_spec.API + path.format(day="2026-11-20")
    assert request.headers["Authorization"] == "Bearer access-1"
    assert page.body == body and page.detail == detail and page.next_token is None
    assert quota_remaining(page.headers) == 140


async def test_profile_and_subscription(fitbit: Any) -> None:
    def answer(request: requests.PreparedRequest) -> Answer:
        if request.method == "GET":
            return _json(200, {"user": {"encodedId": "ABC123", "timezone": "Europe/Berlin"}})
        return _json(201, {"ownerId": "ABC123", "subscriptionId": "wearables"})

    client, transport = fitbit(answer)
    assert await client.whoami("access-1") == Identity("ABC123", "Europe/Berlin")
    await client.subscribe("access-1", "ABC123")
    assert [(r.method, r.url) for r in transport.seen] == [
        ("GET", fitbit_spec.API + fitbit_spec.PROFILE_PATH),
        ("POST", fitbit_spec.API + fitbit_spec.SUBSCRIPTION_PATH.format(subscription="wearables"))]


async def test_refresh_rotates_and_a_used_refresh_token_is_revoked(fitbit: Any) -> None:
    used: set[str] = set()

    def answer(request: requests.PreparedRequest) -> Answer:
        token = _form(request)["refresh_token"]
        if token in used:
            return _error(400, "invalid_grant")
        used.add(token)
        return _tokens()

    client, transport = fitbit(answer)
    fresh = await client.refresh("refresh-1")
    assert (fresh.access_token, fresh.refresh_token) == ("access-2", "refresh-2")
    assert fresh.scope == "activity heartrate sleep profile"  # as the token response spells it (oauthlib: a list)
    with pytest.raises(AccessRevoked):
        await client.refresh("refresh-1")
    assert {r.url for r in transport.seen} == {ENDPOINTS.token}
    assert _form(transport.seen[0])["grant_type"] == "refresh_token" and _basic(transport.seen[0])[0] == "client-1"


async def test_revoke_posts_the_token_to_the_revoke_endpoint(fitbit: Any) -> None:
    client, transport = fitbit(lambda request: (200, {}, b""))
    await client.revoke("refresh-1")
    (request,) = transport.seen
    assert (request.method, request.url, _form(request)) == ("POST", ENDPOINTS.revoke, {"token": "refresh-1"})
    assert _basic(request) == ("client-1", "secret-1")


@pytest.mark.parametrize(("answer", "expected"), [
    (_json(429, {"errors": [{"errorType": "system"}]}, {"Fitbit-Rate-Limit-Reset": "42", "Retry-After": "7"}),
     RateLimited),
    (_error(401, "expired_token"), TokenExpired),
    (_error(401, "invalid_token"), TokenExpired),  # a data call's 401: refresh; only the token endpoint revokes
    ((401, {"Content-Type": "text/html"}, b"<html><body>401 Unauthorized</body></html>"), TokenExpired),
    ((502, {"Content-Type": "text/html"}, b"<html><body>502 Bad Gateway</body></html>"), VendorUnavailable),
    (_json(503, {"error": "unavailable"}), VendorUnavailable),
])
async def test_answers_are_classified(fitbit: Any, answer: Answer, expected: type[Exception]) -> None:
    client, transport = fitbit(lambda request: answer)
    with pytest.raises(expected) as raised:
        await client.fetch_day("access-1", "sleep", DAY)
    if isinstance(raised.value, RateLimited):
        assert raised.value.retry_after == 42.0  # Fitbit's reset header wins over Retry-After
    # one call each, never a refresh behind our back
    assert len(transport.seen) == 1
    assert {r.url for r in transport.seen} == {fitbit_spec.API + "/1.2/user/-/sleep/date/2026-11-20.json"}


@pytest.mark.parametrize("broken", [requests.ConnectionError("refused"), requests.ReadTimeout("slow"),
                                    requests.exceptions.ChunkedEncodingError("cut")], ids=type)
async def test_no_answer_is_vendor_unavailable_on_every_call(fitbit: Any, broken: Exception) -> None:
    client, _ = fitbit(lambda request: broken)
    for call in (lambda: client.exchange_code("c", "v", "https://example.org/cb"), lambda: client.refresh("r"),
                 lambda: client.revoke("r"), lambda: client.whoami("a"), lambda: client.subscribe("a", "u"),
                 lambda: client.fetch_day("a", "activities-heart-intraday", DAY)):
        with pytest.raises(VendorUnavailable) as raised:
            await call()
        assert raised.value.status is None


async def test_the_devices_are_one_get_whatever_the_day(fitbit: Any) -> None:
    body = b'[{"battery": "High", "id": "1", "type": "TRACKER"}]'
    client, transport = fitbit(lambda request: (200, {}, body))
    page = await client.fetch_day("access-1", "devices", DAY)
    assert [r.url for r in transport.seen] == [fitbit_spec.API + "/1/user/-/devices.json"]
    assert page.body == body and page.detail is None and page.next_token is None
    assert client.undated_types == ("devices",) and set(client.data_types) == {*fitbit_spec.DATA_TYPES, "devices"}


async def test_a_403_for_a_scope_not_granted_is_scope_missing(fitbit: Any) -> None:
    client, _ = fitbit(lambda request: _error(403, "insufficient_scope"))
    with pytest.raises(ScopeMissing) as raised:
        await client.fetch_day("access-1", "sleep", DAY)
    assert raised.value.status == 403


def test_a_grant_reads_the_types_of_its_scopes() -> None:
    client = FitbitWebClient(endpoints=ENDPOINTS, credentials=CLIENT, timeout=5.0)
    assert client.granted(" ".join(fitbit_spec.SCOPES)) == client.data_types
    assert client.granted("activity profile") == ("activities-steps-intraday", "activities-summary")
    assert client.granted("heartrate sleep settings") == ("activities-heart-intraday", "sleep", "devices")
    assert client.granted("") == client.data_types  # a token response without a scope grants what was asked


def test_expand_follows_the_webhook_collections() -> None:
    client = FitbitWebClient(endpoints=ENDPOINTS, credentials=CLIENT, timeout=5.0)
    assert client.expand("activities") == ("activities-steps-intraday", "activities-heart-intraday",
                                           "activities-summary")
    assert client.expand("sleep") == ("sleep",) and client.expand("all") == client.data_types
    assert client.expand("activities-heart-intraday") == ("activities-heart-intraday",)
    assert client.expand("devices") == ("devices",)
