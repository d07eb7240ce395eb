"""The legacy Fitbit Web API through ``python-fitbit`` (sync, unmaintained), run off the event loop.

We use its OAuth session (``FitbitOauth2Client``: requests-oauthlib with Fitbit's compliance
fix) and its request handling (``_request``: timeouts, the expired-token retry), and close its
gaps here rather than letting them leak into behaviour (research/fitbit_allofus.md §4):

- PKCE: the authorize URL and code exchange carry ``code_challenge`` / ``code_verifier``.
- Refresh happens only in our TokenManager (per-participant lock, rotated token persisted
  first): the data session gets no ``refresh_cb`` and no auto-refresh URL.
- ``make_request`` drops the response (and its rate-limit headers) and raises ``KeyError`` on a
  429 without ``Retry-After``: we take the response from ``_request`` and classify it ourselves.
- Sleep is v1.2 (with stages), not the library's v1 (``sleep`` there has no stages); no revoke
  in the library: we add one.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
import requests
from fitbit.api import FitbitOauth2Client
from fitbit.exceptions import Timeout as FitbitTimeout
from requests.auth import HTTPBasicAuth

from connectors.endpoints import credentials, endpoints
from connectors.http_errors import error_for
from connectors.oauth import TokenSet
from connectors.vendor_errors import VendorUnavailable
from connectors.vendor_page import VendorPage
from models.providers import Provider
from runtime.settings import Settings

__all__ = ["FITBIT_DATA_TYPES", "FitbitWebClient"]

# a day of each raw data type: (path under the API base, intraday detail level kept on the raw page)
_DAY_PATHS = {
    "activities-steps-intraday": ("/1/user/-/activities/steps/date/{day}/1d/1min.json", "1min"),
    "activities-heart-intraday": ("/1/user/-/activities/heart/date/{day}/1d/1min.json", "1min"),
    "sleep": ("/1.2/user/-/sleep/date/{day}.json", None),
}
FITBIT_DATA_TYPES = tuple(_DAY_PATHS)
# what a webhook's collectionType asks us to fetch (there is no heart-rate collection: it is activities)
_COLLECTIONS = {"activities": ("activities-steps-intraday", "activities-heart-intraday"), "sleep": ("sleep",)}
_SCOPES = ["activity", "heartrate", "sleep", "profile"]
_P = Provider.FITBIT
T = TypeVar("T")


class FitbitWebClient:
    provider = _P
    data_types = FITBIT_DATA_TYPES

    def __init__(self, settings: Settings, *, threads: int = 16) -> None:
        self._urls, self._client = endpoints(settings, _P), credentials(settings, _P)
        self._timeout = settings.http_timeout
        if urlsplit(self._urls.api).hostname in ("127.0.0.1", "localhost", "::1"):
            # oauthlib refuses plain http; the simulator on loopback is the one place it is fine
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        # python-fitbit blocks: its calls run on their own threads, never on the event loop
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fitbit")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def expand(self, data_type: str) -> tuple[str, ...]:
        if data_type in ("all", ""):
            return FITBIT_DATA_TYPES
        return _COLLECTIONS.get(data_type, (data_type,))

    async def _run(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(call, *args, **kwargs))

    def _oauth(self, tokens: TokenSet | None = None, redirect_uri: str | None = None) -> FitbitOauth2Client:
        client = FitbitOauth2Client(
            self._client.client_id, self._client.client_secret,
            access_token=tokens.access_token if tokens else None,
            refresh_token=tokens.refresh_token if tokens else None,
            redirect_uri=redirect_uri, timeout=self._timeout)
        client.authorization_url = self._urls.authorize
        client.access_token_url = client.refresh_token_url = self._urls.token
        client.session.auto_refresh_url = None  # refresh only under our lock, never behind our back
        if tokens:
            client.session.token = {**client.session.token, "token_type": "Bearer"}
        return client

    def authorize_url(self, *, state: str, challenge: str, redirect_uri: str) -> str:
        url, _ = self._oauth(redirect_uri=redirect_uri).authorize_token_url(
            scope=_SCOPES, state=state, code_challenge=challenge, code_challenge_method="S256")
        return str(url)

    def _response(self, response: requests.Response) -> VendorPage:
        error = error_for(_P, response.status_code, response.headers, response.content)
        if error is not None:
            raise error
        return VendorPage(body=response.content, headers=response.headers)

    def _post_token(self, form: dict[str, str]) -> tuple[TokenSet, str]:
        # the library's fetch_access_token has no code_verifier: post the exchange on its session
        try:
            response = self._oauth().session.post(self._urls.token, data=form, timeout=self._timeout,
                                                  auth=HTTPBasicAuth(self._client.client_id,
                                                                     self._client.client_secret))
        except (requests.RequestException, FitbitTimeout) as broken:
            raise VendorUnavailable(f"fitbit: {type(broken).__name__}", provider=_P) from None
        page = self._response(response)
        body = orjson.loads(page.body)
        return TokenSet.from_response(body), str(body.get("user_id", ""))

    def _refresh(self, refresh_token: str) -> TokenSet:
        rotated: list[dict[str, Any]] = []
        client = self._oauth(TokenSet("expired", refresh_token, 0.0))
        client.session.token_updater = rotated.append  # the library refreshes only with an updater set
        try:
            client.refresh_token()
        except (requests.RequestException, FitbitTimeout) as broken:
            raise VendorUnavailable(f"fitbit: {type(broken).__name__}", provider=_P) from None
        except Exception as refused:  # oauthlib raises its own errors for an OAuth error body
            error = error_for(_P, getattr(refused, "status_code", 400) or 400, {},
                              orjson.dumps({"errors": [{"errorType": getattr(refused, "error", "invalid_grant")}]}))
            raise error from None  # type: ignore[misc]
        return TokenSet.from_response(rotated[-1])

    def _get(self, tokens: TokenSet, url: str, method: str = "GET") -> VendorPage:
        try:
            response = self._oauth(tokens)._request(method, url)  # noqa: SLF001 - see the module docstring
        except (requests.RequestException, FitbitTimeout) as broken:
            raise VendorUnavailable(f"fitbit: {type(broken).__name__}", provider=_P) from None
        return self._response(response)

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> TokenSet:
        tokens, _ = await self._run(self._post_token, {
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": redirect_uri, "client_id": self._client.client_id})
        return tokens  # type: ignore[no-any-return]

    async def whoami(self, access_token: str) -> tuple[str, str | None]:
        """(encodedId, IANA time zone) from the profile: intraday times are local wall-clock."""
        url = f"{self._urls.api}/1/user/-/profile.json"
        profile = await self._run(self._get, TokenSet(access_token, "-", 0.0), url)
        user = orjson.loads(profile.body).get("user", {})
        return str(user.get("encodedId", "")), user.get("timezone")

    async def refresh(self, refresh_token: str) -> TokenSet:
        result: TokenSet = await self._run(self._refresh, refresh_token)
        return result

    async def revoke(self, token: str) -> None:
        def call() -> None:
            response = requests.post(self._urls.revoke, data={"token": token}, timeout=self._timeout,
                                     auth=HTTPBasicAuth(self._client.client_id, self._client.client_secret))
            self._response(response)
        await self._run(call)

    async def subscribe(self, access_token: str, vendor_user_id: str) -> None:
        url = f"{self._urls.api}/1/user/-/apiSubscriptions/wearables.json"  # no collection: all of them
        await self._run(self._get, TokenSet(access_token, "-", 0.0), url, "POST")

    async def fetch_day(self, access_token: str, data_type: str, day: date, *, page_token: str | None = None
                        ) -> VendorPage:
        path, detail = _DAY_PATHS[data_type]
        page: VendorPage = await self._run(self._get, TokenSet(access_token, "-", 0.0),
                                           self._urls.api + path.format(day=day.isoformat()))
        return replace(page, detail=detail)
