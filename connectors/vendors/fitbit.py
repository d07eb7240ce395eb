"""The legacy Fitbit Web API through ``python-fitbit`` (sync, unmaintained), run off the event loop.

We use its OAuth session (``FitbitOauth2Client``: requests-oauthlib with Fitbit's compliance
fix, the bearer token on every request), and close its gaps here rather than letting them leak
into behaviour (docs/vendors.md, Fitbit Web API, "python-fitbit"):

- PKCE: the authorize URL and code exchange carry ``code_challenge`` / ``code_verifier``.
- Refresh happens only in our TokenManager (per-participant lock, rotated token persisted
  first): the data session gets no ``refresh_cb`` and no auto-refresh URL. The refresh is posted
  on the library's session with our timeout (its ``refresh_token`` has none) and classified by
  ``token_error_for``: only ``invalid_grant`` / ``invalid_token`` revoke, a 5xx, an HTML page or a
  timeout is ``VendorUnavailable``.
- Its ``_request`` parses every 401 body as JSON (an HTML one raises) and re-sends it without a
  refresh: data calls go on its session directly.
- ``make_request`` drops the response (and its rate-limit headers) and raises ``KeyError`` on a
  429 without ``Retry-After``: we take the response from the session and classify it ourselves.
- Sleep is v1.2 (with stages), not the library's v1 (``sleep`` there has no stages); no revoke
  in the library: we add one.

Besides the intraday days and sleep, a day's activity summary (``activities-summary``) and the
account's devices (``devices``: a snapshot, fetched once per request). The consent page asks for
the scope of every data type we read (``SCOPE_OF``) and ``profile``; ``granted`` says which types a
participant's grant reads.

Every request goes through a ``requests`` transport adapter mounted on the library's session:
the default one (the network), or one a test passes in (canned answers, no server).
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from functools import partial
from typing import Any, Self

import aiohttp
import orjson
import requests
from fitbit.api import FitbitOauth2Client
from requests.adapters import BaseAdapter
from requests.auth import HTTPBasicAuth

from connectors.errors import error_for, token_error_for, token_set
from connectors.oauth import TokenSet
from connectors.vendors.base import Identity, VendorClient, VendorPage, translate_errors
from connectors.vendors.endpoints import Credentials, Endpoints, is_loopback
from connectors.vendors.fitbit_spec import (
    COLLECTIONS,
    DATA_TYPES,
    DAY_PATHS,
    PROFILE_PATH,
    PROVIDER,
    SCOPE_OF,
    SCOPES,
    SUBSCRIPTION_PATH,
    UNDATED_PATHS,
    UNDATED_TYPES,
)

__all__ = ["FitbitWebClient"]

_SCOPES = list(SCOPES)
_P = PROVIDER


class FitbitWebClient(VendorClient):
    """The Fitbit Web API through python-fitbit, its blocking calls on a thread pool of their own.

    ::

        client = FitbitWebClient(endpoints=endpoints(settings.vendors, Provider.FITBIT),
                                 credentials=credentials(settings.vendors, Provider.FITBIT), timeout=30.0)
        page = await client.fetch_day(access_token, "activities-heart-intraday", day)
        await client.aclose()  # the threads

    :param endpoints: the API, consent, token and revoke URLs.
    :param credentials: our OAuth client at Fitbit (HTTP Basic on the token endpoint).
    :param timeout: seconds per call, answer included.
    :param transport: a ``requests`` adapter every call goes through (None: requests' own, the
        network); a test passes one that answers without a server.
    :param insecure_transport: allow plain ``http://`` endpoints (the simulator on loopback).
        oauthlib reads ``OAUTHLIB_INSECURE_TRANSPORT`` from the environment at every check and has
        no per-session switch, so this sets that variable for the whole process.
    :param threads: the most python-fitbit calls in flight at once.
    """

    provider = _P
    data_types = (*DATA_TYPES, *UNDATED_TYPES)
    undated_types = UNDATED_TYPES

    def __init__(self, *, endpoints: Endpoints, credentials: Credentials, timeout: float,
                 transport: BaseAdapter | None = None, insecure_transport: bool = False, threads: int = 16) -> None:
        self._urls, self._client, self._timeout = endpoints, credentials, timeout
        self._transport = transport
        if insecure_transport:
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        # python-fitbit blocks: its calls run on their own threads, never on the event loop
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fitbit")

    @classmethod
    def build(cls, *, endpoints: Endpoints, credentials: Credentials, timeout: float,
              session: aiohttp.ClientSession) -> Self:
        # python-fitbit speaks requests: the aiohttp session is not for it
        return cls(endpoints=endpoints, credentials=credentials, timeout=timeout,
                   insecure_transport=is_loopback(endpoints.api))

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def expand(self, data_type: str) -> tuple[str, ...]:
        if data_type in ("all", ""):
            return self.data_types
        return COLLECTIONS.get(data_type, (data_type,))

    def granted(self, scope: str) -> tuple[str, ...]:
        return self._granted_by(scope, SCOPE_OF)

    async def _run(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(call, *args, **kwargs))

    def _mounted(self, session: requests.Session) -> requests.Session:
        if self._transport is not None:
            session.mount("http://", self._transport)
            session.mount("https://", self._transport)
        return session

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
        self._mounted(client.session)
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

    def _post_token(self, form: dict[str, str], previous_refresh: str | None = None) -> tuple[TokenSet, str]:
        """A token-endpoint call on the library's session, within the client's timeout (the
        library's ``refresh_token`` passes none, and its oauthlib errors would not say whether the
        endpoint refused the grant or merely failed). Revoked only for the documented answers."""
        with translate_errors(_P):
            response = self._oauth().session.post(self._urls.token, data=form, timeout=self._timeout,
                                                  auth=HTTPBasicAuth(self._client.client_id,
                                                                     self._client.client_secret))
        error = token_error_for(_P, response.status_code, response.headers, response.content)
        if error is not None:
            raise error
        tokens = token_set(_P, response.content, previous_refresh=previous_refresh)
        body = orjson.loads(response.content)  # parsed by token_set already: a JSON object
        return tokens, str(body.get("user_id", ""))

    def _refresh(self, refresh_token: str) -> TokenSet:
        refreshed, _ = self._post_token({"grant_type": "refresh_token", "refresh_token": refresh_token},
                                        previous_refresh=refresh_token)
        return refreshed

    def _get(self, tokens: TokenSet, url: str, method: str = "GET") -> VendorPage:
        # the library's session, not its ``_request``: that one parses a 401's body as JSON (an
        # HTML 401 would raise) and re-sends it once without refreshing
        with translate_errors(_P):
            response = self._oauth(tokens).session.request(method, url, timeout=self._timeout)
        return self._response(response)

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> TokenSet:
        exchanged: tuple[TokenSet, str] = await self._run(self._post_token, {
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": redirect_uri, "client_id": self._client.client_id})
        return exchanged[0]

    async def whoami(self, access_token: str) -> Identity:
        """encodedId and IANA time zone from the profile: intraday times are local wall-clock."""
        profile = await self._run(self._get, TokenSet(access_token, "-", 0.0), self._urls.api + PROFILE_PATH)
        user = orjson.loads(profile.body).get("user", {})
        return Identity(str(user.get("encodedId", "")), user.get("timezone"))

    async def refresh(self, refresh_token: str) -> TokenSet:
        result: TokenSet = await self._run(self._refresh, refresh_token)
        return result

    async def revoke(self, token: str) -> None:
        def call() -> None:
            with translate_errors(_P), self._mounted(requests.Session()) as session:
                response = session.post(self._urls.revoke, data={"token": token}, timeout=self._timeout,
                                        auth=HTTPBasicAuth(self._client.client_id, self._client.client_secret))
            self._response(response)
        await self._run(call)

    async def subscribe(self, access_token: str, vendor_user_id: str) -> None:
        url = self._urls.api + SUBSCRIPTION_PATH.format(subscription="wearables")  # no collection: all of them
        await self._run(self._get, TokenSet(access_token, "-", 0.0), url, "POST")

    async def fetch_day(self, access_token: str, data_type: str, day: date, *, page_token: str | None = None
                        ) -> VendorPage:
        path, detail = DAY_PATHS[data_type] if data_type in DAY_PATHS else (UNDATED_PATHS[data_type], None)
        page: VendorPage = await self._run(self._get, TokenSet(access_token, "-", 0.0),
                                           self._urls.api + path.format(day=day.isoformat()))
        return replace(page, detail=detail)
