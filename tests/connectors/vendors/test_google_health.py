"""The Google Health client reads ``nextPageToken`` without parsing the page, and gets it right;
what it asks each data type for (its filter member, its page size), the devices, the scopes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import ScopeMissing
from connectors.vendors import google_health_spec as spec
from connectors.vendors.endpoints import Credentials, Endpoints
from connectors.vendors.google_health import GoogleHealthClient, next_page_token

_scalar = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=15), inner, max_size=4), max_leaves=20)
# values that try to look like the key: quotes, the key's own name, JSON punctuation
_tricky = st.sampled_from(['nextPageToken', '"nextPageToken":"x"}', '\\"nextPageToken\\"', 'a"}', ''])


@given(points=st.lists(_json, max_size=5), token=st.none() | st.text(alphabet="abcXYZ019-_=", max_size=30),
       decoy=st.dictionaries(st.text(max_size=15) | _tricky, _json | _tricky, max_size=3), token_first=st.booleans())
def test_next_page_token_agrees_with_parsing_the_page(points: list[Any], token: str | None,
                                                      decoy: dict[str, Any], token_first: bool) -> None:
    page: dict[str, Any] = {"dataPoints": [*points, decoy]}
    if token is not None:
        page = {"nextPageToken": token, **page} if token_first else {**page, "nextPageToken": token}
    body = orjson.dumps(page)
    assert next_page_token(body) == (orjson.loads(body).get("nextPageToken") or None)


def test_next_page_token_of_a_last_page_a_spaced_page_and_a_broken_page() -> None:
    assert next_page_token(b'{"dataPoints": []}') is None
    assert next_page_token(b'{"dataPoints": [],\n  "nextPageToken" : "MTAwMA=="\n}\n') == "MTAwMA=="
    assert next_page_token(b'{"nextPageToken": "abc", "dataPoints": [{"x": "}"}]}') == "abc"
    assert next_page_token(b'{"nextPageToken": "abc", "dataPoi') is None  # the normalizer dead-letters it


class _Recorder:
    """A Google stand-in that records every request and answers from ``answer``."""

    def __init__(self, answer: Callable[[web.Request], web.Response]) -> None:
        self.answer, self.seen = answer, list[web.Request]()

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(request)
        return self.answer(request)


@contextlib.asynccontextmanager
async def _google(answer: Callable[[web.Request], web.Response], **options: Any
                  ) -> AsyncIterator[tuple[GoogleHealthClient, _Recorder]]:
    recorder = _Recorder(answer)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        base = str(server.make_url("")).rstrip("/")
        endpoints = Endpoints(api=base, authorize=base + "/auth", token=base + "/token", revoke=base + "/revoke")
        yield GoogleHealthClient(endpoints=endpoints, credentials=Credentials("client-1", "s"), timeout=5.0,
                                 session=session, **options), recorder


def _points(request: web.Request) -> web.Response:
    return web.json_response({"dataPoints": []})


async def test_each_data_type_is_asked_for_on_its_own_filter_member_and_page_size() -> None:
    async with _google(_points, page_size=1000) as (client, recorder):
        for data_type in spec.DATA_TYPES:
            await client.fetch_day("access-1", data_type, date(2026, 11, 20), page_token="t1")
        await client.fetch_day("access-1", "paired-devices", date(2026, 11, 20))
    asked = {r.path: dict(r.query) for r in recorder.seen}
    points = "/v4/users/me/dataTypes/{}/dataPoints"
    assert asked == {
        points.format("steps"): {"filter": 'steps.interval.start_time >= "2026-11-20T00:00:00Z" AND '
                                           'steps.interval.start_time < "2026-11-21T00:00:00Z"',
                                 "page_size": "1000", "page_token": "t1"},
        points.format("heart-rate"): {"filter": 'heart_rate.sample_time.physical_time >= "2026-11-20T00:00:00Z" AND '
                                                'heart_rate.sample_time.physical_time < "2026-11-21T00:00:00Z"',
                                      "page_size": "1000", "page_token": "t1"},
        points.format("daily-resting-heart-rate"): {
            "filter": 'daily_resting_heart_rate.date >= "2026-11-20" AND daily_resting_heart_rate.date < "2026-11-21"',
            "page_size": "1000", "page_token": "t1"},
        points.format("sleep"): {"filter": 'sleep.interval.civil_end_time >= "2026-11-20T00:00:00" AND '
                                           'sleep.interval.civil_end_time < "2026-11-21T00:00:00"',
                                 "page_size": "25", "page_token": "t1"},  # sleep: 25 at most
        "/v4/users/me/pairedDevices": {"pageSize": "100"},  # devices: 100 at most
    }
    assert all(r.headers["Authorization"] == "Bearer access-1" for r in recorder.seen)


async def test_an_empty_page_with_a_token_says_more_follow_and_a_403_for_a_scope_is_scope_missing() -> None:
    def answer(request: web.Request) -> web.Response:
        if request.path.endswith("/sleep/dataPoints"):
            return web.json_response({"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "m",
                                                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                             "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT"}]}},
                                     status=403)
        return web.json_response({"nextPageToken": "MA=="})

    async with _google(answer) as (client, _):
        page = await client.fetch_day("access-1", "steps", date(2026, 11, 20))
        assert page.next_token == "MA==" and orjson.loads(page.body) == {"nextPageToken": "MA=="}
        with pytest.raises(ScopeMissing):
            await client.fetch_day("access-1", "sleep", date(2026, 11, 20))


async def test_the_consent_url_asks_for_every_read_scope_and_a_grant_reads_their_types() -> None:
    async with _google(_points) as (client, _):
        url = client.authorize_url(state="st", challenge="c" * 43, redirect_uri="https://example.org/cb")
        assert parse_qs(urlsplit(url).query)["scope"] == [" ".join(spec.SCOPES)]
        assert client.granted(" ".join(spec.SCOPES)) == client.data_types
        assert client.granted(" ".join(s for s in spec.SCOPES if s != spec.SLEEP_SCOPE)) == (
            "steps", "heart-rate", "daily-resting-heart-rate", "paired-devices")
        assert client.granted(spec.METRICS_SCOPE) == ("heart-rate", "daily-resting-heart-rate")
        assert client.undated_types == ("paired-devices",)
