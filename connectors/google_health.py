"""Async client of the Google Health API v4 and Google OAuth (aiohttp).

A day of steps or heart rate is fetched as its UTC window ``[day 00:00Z, day+1 00:00Z)`` with a
physical-time filter, following ``nextPageToken``; each response page is kept verbatim. The
normalizer takes every sample's local date from its own UTC offset, so UTC windows need no time
zone and, put together, cover every sample exactly. Sleep can only be filtered by its civil end
time: a day of sleep is the sessions that ended on that local date (the date DESIGN.md files
them under), again a partition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

from connectors.endpoints import credentials, endpoints
from connectors.http_errors import error_for
from connectors.oauth import TokenSet
from connectors.vendor_errors import VendorUnavailable
from connectors.vendor_page import VendorPage
from models.providers import Provider
from runtime.settings import Settings

__all__ = ["GOOGLE_DATA_TYPES", "GoogleHealthClient", "next_page_token"]

GOOGLE_DATA_TYPES = ("steps", "heart-rate", "sleep")
_FILTER_FIELD = {"steps": "steps.interval.start_time", "heart-rate": "heart_rate.sample_time.physical_time",
                 "sleep": "sleep.interval.civil_end_time"}
_BOUND_FORMAT = {"sleep": "%Y-%m-%dT%H:%M:%S"}  # civil: no zone; the others are UTC instants
_SCOPES = ("https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly "
           "https://www.googleapis.com/auth/googlehealth.health_metrics_and_measurements.readonly")
_P = Provider.GOOGLE_HEALTH


class GoogleHealthClient:
    provider = _P
    data_types = GOOGLE_DATA_TYPES

    def __init__(self, settings: Settings, session: aiohttp.ClientSession, *, page_size: int = 1000) -> None:
        self._urls, self._client = endpoints(settings, _P), credentials(settings, _P)
        self._session, self._page_size = session, page_size
        self._timeout = aiohttp.ClientTimeout(total=settings.http_timeout)
        self._project = "wearables"

    def expand(self, data_type: str) -> tuple[str, ...]:
        return GOOGLE_DATA_TYPES if data_type in ("all", "") else (data_type,)

    def authorize_url(self, *, state: str, challenge: str, redirect_uri: str) -> str:
        return self._urls.authorize + "?" + urlencode({
            "client_id": self._client.client_id, "response_type": "code", "redirect_uri": redirect_uri,
            "scope": _SCOPES, "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
            "access_type": "offline", "prompt": "consent"})

    async def _call(self, method: str, url: str, **kwargs: Any) -> tuple[bytes, Mapping[str, str]]:
        try:
            async with self._session.request(method, url, timeout=self._timeout, **kwargs) as response:
                body = await response.read()
                error = error_for(_P, response.status, response.headers, body)
                if error is not None:
                    raise error
                return body, response.headers
        except (aiohttp.ClientError, TimeoutError) as broken:
            raise VendorUnavailable(f"google_health: {type(broken).__name__}", provider=_P) from None

    async def _token_call(self, form: dict[str, str], previous_refresh: str | None = None) -> TokenSet:
        body, _ = await self._call("POST", self._urls.token, data={
            **form, "client_id": self._client.client_id, "client_secret": self._client.client_secret})
        return TokenSet.from_response(orjson.loads(body), previous_refresh=previous_refresh)

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> TokenSet:
        return await self._token_call({"grant_type": "authorization_code", "code": code,
                                       "code_verifier": verifier, "redirect_uri": redirect_uri})

    async def whoami(self, access_token: str) -> tuple[str, str | None]:
        """(healthUserId, time zone): the identity call gives no zone; samples carry their offsets."""
        body, _ = await self._call("GET", f"{self._urls.api}/v4/users/me/identity",
                                   headers={"Authorization": f"Bearer {access_token}"})
        return str(orjson.loads(body)["healthUserId"]), None

    async def refresh(self, refresh_token: str) -> TokenSet:
        return await self._token_call({"grant_type": "refresh_token", "refresh_token": refresh_token},
                                      previous_refresh=refresh_token)

    async def revoke(self, token: str) -> None:
        await self._call("POST", self._urls.revoke, data={"token": token})

    async def subscribe(self, access_token: str, vendor_user_id: str) -> None:
        url = f"{self._urls.api}/v4/projects/{self._project}/subscribers/wearables/subscriptions"
        await self._call("POST", url, headers={"Authorization": f"Bearer {access_token}"},
                         json={"dataTypes": list(GOOGLE_DATA_TYPES), "user": f"users/{vendor_user_id}"})

    async def fetch_day(self, access_token: str, data_type: str, day: date, *, page_token: str | None = None
                        ) -> VendorPage:
        """One page of ``data_type`` in ``day`` (its UTC window; for sleep, the sessions whose local
        end falls on it); ``next_token`` says whether more follow."""
        start = datetime.combine(day, datetime.min.time(), UTC)
        field, form = _FILTER_FIELD[data_type], _BOUND_FORMAT.get(data_type, "%Y-%m-%dT%H:%M:%SZ")
        query = {"filter": f'{field} >= "{start:{form}}" AND {field} < "{start + timedelta(days=1):{form}}"',
                 "page_size": str(self._page_size)}
        if page_token:
            query["page_token"] = page_token
        body, headers = await self._call("GET", f"{self._urls.api}/v4/users/me/dataTypes/{data_type}/dataPoints",
                                         params=query, headers={"Authorization": f"Bearer {access_token}"})
        return VendorPage(body=body, page_token=page_token, next_token=next_page_token(body), headers=headers)


_TRAILING_TOKEN = re.compile(rb'"nextPageToken"\s*:\s*"([^"\\]*)"\s*}\s*$')


def next_page_token(body: bytes) -> str | None:
    """The page's top-level ``nextPageToken``, without parsing a page of a thousand points.

    Parsing here would double the scheduler's cost per call (the normalizer parses the page
    anyway, and routes a broken one to the dead-letter topic). Quotes inside JSON strings are
    escaped, so without the bytes ``"nextPageToken"`` there is no such key: the last page. A
    token as the object's final member (how the API writes it) is read from the tail; anything
    else is parsed.
    """
    if b'"nextPageToken"' not in body:
        return None
    trailing = _TRAILING_TOKEN.search(body, max(0, len(body) - 4096))
    if trailing is not None:
        return trailing.group(1).decode() or None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # published as it is; the normalizer dead-letters it with the reason
    token = document.get("nextPageToken") if isinstance(document, dict) else None
    return str(token) if token else None

