"""Async client of the Google Health API v4 and Google OAuth (aiohttp).

A day of steps or heart rate is fetched as its UTC window ``[day 00:00Z, day+1 00:00Z)`` with a
physical-time filter, following ``nextPageToken``; each response page is kept verbatim. The
normalizer takes every sample's local date from its own UTC offset, so UTC windows need no time
zone and, put together, cover every sample exactly. The daily resting heart rate is filtered on
its civil ``date``. Sleep is filtered by its civil end time: a day of sleep is the sessions that
ended on that local date (the date a night is filed under, docs/vendors.md, Google Health API),
again a partition. The paired devices are a snapshot, listed once per request.

Pages come newest first (the API lists by interval start time, descending) and nothing here
relies on their order; a page may be empty and still carry a ``nextPageToken``, so tokens are
followed until a page has none. The consent page asks for the scope of every data type we read
(``SCOPE_OF``); a participant may untick some, and ``granted`` says which types their grant
reads. Paths, scopes, page sizes and the filter grammar are in ``google_health_spec.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Self
from urllib.parse import urlencode

import aiohttp
import orjson

from connectors.errors import ScopeMissing, VendorError, VendorRejected, error_for, token_error_for, token_set
from connectors.oauth import TokenSet
from connectors.vendors.base import Identity, VendorClient, VendorPage, translate_errors
from connectors.vendors.endpoints import Credentials, Endpoints
from connectors.vendors.google_health_spec import (
    AUTHORIZE_EXTRAS,
    BOUND_FORMATS,
    DATA_POINTS_PATH,
    DATA_TYPES,
    FILTER_FIELDS,
    IDENTITY_PATH,
    PAGE_SIZES,
    PAIRED_DEVICES,
    PAIRED_DEVICES_PATH,
    PROVIDER,
    SCOPE_OF,
    SCOPES,
    SETTINGS_PATH,
    SUBSCRIPTIONS_PATH,
    UNDATED_TYPES,
)
from models.providers import Provider

__all__ = ["GoogleHealthClient", "next_page_token"]

_SCOPES = " ".join(SCOPES)
Classify = Callable[[Provider, int, Mapping[str, str], bytes], VendorError | None]
_P = PROVIDER


class GoogleHealthClient(VendorClient):
    """The Google Health API v4 on an aiohttp session the caller owns (and closes).

    ::

        client = GoogleHealthClient(endpoints=endpoints(settings.vendors, Provider.GOOGLE_HEALTH),
                                    credentials=credentials(settings.vendors, Provider.GOOGLE_HEALTH),
                                    timeout=30.0, session=session)
        page = await client.fetch_day(access_token, "heart-rate", day)  # then page.next_token ...

    :param endpoints: the API, consent, token and revoke URLs.
    :param credentials: our OAuth client at Google.
    :param timeout: seconds per call, answer included.
    :param session: the process's aiohttp session (connection pool and DNS cache shared).
    :param page_size: data points asked for per page (at most each data type's maximum).
    """

    provider = _P
    data_types = (*DATA_TYPES, *UNDATED_TYPES)
    undated_types = UNDATED_TYPES

    def __init__(self, *, endpoints: Endpoints, credentials: Credentials, timeout: float,
                 session: aiohttp.ClientSession, page_size: int = 1000) -> None:
        self._urls, self._client = endpoints, credentials
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._project = "wearables"
        self._points = {t: endpoints.api + DATA_POINTS_PATH.format(data_type=t) for t in DATA_TYPES}
        self._devices = endpoints.api + PAIRED_DEVICES_PATH
        # the most each type's list takes: a sleep page holds 25 sessions at most, a devices page 100
        self._page_sizes = {t: str(min(page_size, PAGE_SIZES[t][1])) for t in self.data_types}

    @classmethod
    def build(cls, *, endpoints: Endpoints, credentials: Credentials, timeout: float,
              session: aiohttp.ClientSession) -> Self:
        return cls(endpoints=endpoints, credentials=credentials, timeout=timeout, session=session)

    def authorize_url(self, *, state: str, challenge: str, redirect_uri: str) -> str:
        return self._urls.authorize + "?" + urlencode({
            "client_id": self._client.client_id, "response_type": "code", "redirect_uri": redirect_uri,
            "scope": _SCOPES, "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
            **AUTHORIZE_EXTRAS})

    async def _call(self, method: str, url: str, *, classify: Classify = error_for,
                    **kwargs: Any) -> tuple[bytes, Mapping[str, str]]:
        with translate_errors(_P):
            async with self._session.request(method, url, timeout=self._timeout, **kwargs) as response:
                body = await response.read()
                error = classify(_P, response.status, response.headers, body)
                if error is not None:
                    raise error
                return body, response.headers

    async def _token_call(self, form: dict[str, str], previous_refresh: str | None = None) -> TokenSet:
        """A token-endpoint call, within the client's timeout; revoked only for ``invalid_grant``."""
        body, _ = await self._call("POST", self._urls.token, classify=token_error_for, data={
            **form, "client_id": self._client.client_id, "client_secret": self._client.client_secret})
        return token_set(_P, body, previous_refresh=previous_refresh)

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> TokenSet:
        return await self._token_call({"grant_type": "authorization_code", "code": code,
                                       "code_verifier": verifier, "redirect_uri": redirect_uri})

    def granted(self, scope: str) -> tuple[str, ...]:
        return self._granted_by(scope, SCOPE_OF)

    async def whoami(self, access_token: str) -> Identity:
        """healthUserId and legacyUserId, and the time zone from the user's settings.

        Samples carry their own UTC offsets, but a device's last sync is a bare UTC instant: its
        local time needs the zone. Without the settings scope (a participant may untick it) the
        zone stays unknown and such times are kept in UTC.
        """
        headers = {"Authorization": f"Bearer {access_token}"}
        body, _ = await self._call("GET", self._urls.api + IDENTITY_PATH, headers=headers)
        identity = orjson.loads(body)
        legacy = identity.get("legacyUserId")
        try:
            settings, _ = await self._call("GET", self._urls.api + SETTINGS_PATH, headers=headers)
            zone = orjson.loads(settings).get("timeZone")
        except (ScopeMissing, VendorRejected):  # without the settings scope, or a refusal: no zone, still linked
            zone = None
        return Identity(str(identity["healthUserId"]), str(zone) if zone else None, str(legacy) if legacy else None)

    async def refresh(self, refresh_token: str) -> TokenSet:
        return await self._token_call({"grant_type": "refresh_token", "refresh_token": refresh_token},
                                      previous_refresh=refresh_token)

    async def revoke(self, token: str) -> None:
        await self._call("POST", self._urls.revoke, data={"token": token})

    async def subscribe(self, access_token: str, vendor_user_id: str) -> None:
        url = self._urls.api + SUBSCRIPTIONS_PATH.format(project=self._project, subscriber="wearables")
        await self._call("POST", url, headers={"Authorization": f"Bearer {access_token}"},
                         json={"dataTypes": list(DATA_TYPES), "user": f"users/{vendor_user_id}"})

    async def fetch_day(self, access_token: str, data_type: str, day: date, *, page_token: str | None = None
                        ) -> VendorPage:
        """One page of ``data_type`` in ``day`` (its UTC window; for the resting heart rate its
        date; for sleep, the sessions whose local end falls on it; the paired devices whatever
        the day); ``next_token`` says whether more follow."""
        if data_type == PAIRED_DEVICES:
            url, query = self._devices, {"pageSize": self._page_sizes[data_type]}
            if page_token:
                query["pageToken"] = page_token
        else:
            start = datetime.combine(day, datetime.min.time(), UTC)
            field, form = FILTER_FIELDS[data_type], BOUND_FORMATS[data_type]
            url, query = self._points[data_type], {
                "filter": f'{field} >= "{start:{form}}" AND {field} < "{start + timedelta(days=1):{form}}"',
                "page_size": self._page_sizes[data_type]}
            if page_token:
                query["page_token"] = page_token
        body, headers = await self._call("GET", url, params=query, headers={"Authorization": f"Bearer {access_token}"})
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

