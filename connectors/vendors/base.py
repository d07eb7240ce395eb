"""What a vendor client is: the one contract the fetcher, the token manager and linking use.

A vendor is one subclass of ``VendorClient`` in its own module, beside a ``<vendor>_spec.py`` of
its wire facts, registered in ``registry.VENDOR_CLIENTS``; the contract tests
(``tests/connectors/vendors/test_contract.py``) then run it against the simulator.

Also here: what a client hands back for one request (``VendorPage``), the one translation of
the HTTP libraries' exceptions into ours (``translate_errors``), and the retry loop for calls
that met a 5xx or a broken connection (``retrying``).
"""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from types import TracebackType
from typing import ClassVar, Self, TypeVar

import aiohttp
import requests
from fitbit.exceptions import Timeout as FitbitTimeout

from connectors.errors import VendorUnavailable
from connectors.oauth import TokenSet
from connectors.vendors.endpoints import Credentials, Endpoints
from models.providers import Provider

__all__ = ["TRANSPORT_ERRORS", "Identity", "VendorClient", "VendorPage", "backoff_delay", "retrying",
           "translate_errors"]

T = TypeVar("T")
_CAP_S = 30.0

#: What the HTTP libraries raise when no answer came: refused or broken connections, timeouts.
#: (python-fitbit turns a requests timeout into its own ``Timeout``.) An answer that came is
#: classified by ``connectors.errors.error_for`` instead.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError, TimeoutError, requests.RequestException, FitbitTimeout)


@dataclass(frozen=True, slots=True)
class VendorPage:
    """What a vendor client hands back for one request: the body, verbatim, and how to go on."""

    body: bytes = field(repr=False)
    page_token: str | None = None  # the token that produced this page
    next_token: str | None = None  # more pages follow when set
    # as the HTTP library gives them: case-insensitive (HTTP/2 sends names in lower case)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    detail: str | None = None  # Fitbit intraday detail level ("1min"), kept on the raw page


class _Translated:
    """``translate_errors``' context manager: a class, not a generator, since it wraps every call."""

    __slots__ = ("_provider",)

    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if error is not None and isinstance(error, TRANSPORT_ERRORS):
            raise VendorUnavailable(f"{self._provider.value}: {type(error).__name__}",
                                    provider=self._provider) from None


_TRANSLATED = {provider: _Translated(provider) for provider in Provider}


def translate_errors(provider: Provider) -> _Translated:
    """A context manager: any of ``TRANSPORT_ERRORS`` raised inside becomes ``VendorUnavailable``.

    Our errors and every other exception pass through unchanged::

        with translate_errors(Provider.GOOGLE_HEALTH):
            async with session.get(url) as response:
                body = await response.read()
    """
    return _TRANSLATED[provider]


def backoff_delay(attempt: int, base_s: float) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): base·2^(n-1), capped, times 0.5-1.5."""
    return min(_CAP_S, base_s * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter


async def retrying(call: Callable[[], Awaitable[T]], *, attempts: int, base_s: float) -> T:
    """``call()``, again after a jittered exponential backoff each time it raises
    ``VendorUnavailable``, at most ``attempts`` times in all (the last error is raised)."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except VendorUnavailable:
            if attempt == attempts:
                raise
            await asyncio.sleep(backoff_delay(attempt, base_s))
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Identity:
    """The vendor's answer to "who is this token's user".

    :param user_id: the vendor's user id (Fitbit ``encodedId``, Google ``healthUserId``).
    :param timezone: the participant's IANA time zone, when the vendor says.
    :param legacy_user_id: Google's ``legacyUserId``: the same person's Fitbit Web API user id,
        only for mapping a legacy link to the new one (Google: "must not be used for any other purpose").
    """

    user_id: str
    timezone: str | None = None
    legacy_user_id: str | None = None


class VendorClient(ABC):
    """One vendor's API as the connectors use it: consent, tokens, identity, subscription, data.

    Every method either returns what the vendor answered or raises one of
    ``connectors.errors``; a client never sleeps or retries (the caller decides, see
    ``Fetcher``). Build one through ``registry.build_clients(settings.vendors, session)``, or directly
    with the subclass's own keyword arguments in tests; close it with ``await client.aclose()``
    (or ``async with client:``)::

        client = GoogleHealthClient.build(endpoints=..., credentials=..., timeout=30.0, session=session)
        tokens = await client.exchange_code(code, verifier, redirect_uri)
        page = await client.fetch_day(tokens.access_token, "steps", day)

    :cvar provider: the vendor this client speaks to.
    :cvar data_types: the raw data types it fetches (``RawPage.data_type``), a day at a time
        except the ``undated_types`` among them.
    :cvar undated_types: the data types that are a snapshot, not a day (the account's devices):
        a fetch request asks for them once, whatever its days, and files the page under its last
        day; ``fetch_day`` ignores ``day`` for them.
    """

    provider: ClassVar[Provider]
    data_types: ClassVar[tuple[str, ...]]
    undated_types: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @abstractmethod
    def build(cls, *, endpoints: Endpoints, credentials: Credentials, timeout: float,
              session: aiohttp.ClientSession) -> Self:
        """The client as a process runs it, on the process's shared aiohttp ``session`` (a client
        that speaks through another HTTP library ignores it). ``timeout``: seconds per call."""

    def expand(self, data_type: str) -> tuple[str, ...]:
        """The data types a fetch request's ``data_type`` stands for ("all" or "": every one)."""
        return self.data_types if data_type in ("all", "") else (data_type,)

    @abstractmethod
    def authorize_url(self, *, state: str, challenge: str, redirect_uri: str) -> str:
        """The consent page's URL: our client, the scopes, ``state`` and the PKCE S256 ``challenge``."""

    @abstractmethod
    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> TokenSet:
        """The participant's first tokens, for the code the consent page redirected with."""

    @abstractmethod
    async def whoami(self, access_token: str) -> Identity:
        """Who the token belongs to at the vendor (and their time zone, if the vendor says)."""

    def granted(self, scope: str) -> tuple[str, ...]:
        """The data types a grant of ``scope`` (the token response's, space-separated) lets us read.

        A participant may untick scopes on the consent page; a data type they did not grant is
        not fetched (asking would be refused with 403 on every poll). This default grants all;
        a vendor with scopes per data type overrides it (``_granted_by``).
        """
        del scope
        return self.data_types

    def _granted_by(self, scope: str, scope_of: Mapping[str, str]) -> tuple[str, ...]:
        """``granted`` for a vendor whose data types each need one scope (``scope_of``).

        A token response without a scope grants what was asked (RFC 6749 §5.1: the field may be
        left out when it is identical to the request), so an empty ``scope`` grants every type.
        """
        given = set(scope.split())
        return tuple(t for t in self.data_types if not given or scope_of[t] in given)

    @abstractmethod
    async def refresh(self, refresh_token: str) -> TokenSet:
        """New tokens. Refresh tokens are single-use: a second use raises ``AccessRevoked``."""

    @abstractmethod
    async def revoke(self, token: str) -> None:
        """End our grant at the vendor (withdrawal): every token of it stops working."""

    @abstractmethod
    async def subscribe(self, access_token: str, vendor_user_id: str) -> None:
        """Ask the vendor to notify our webhook when the participant's devices sync."""

    @abstractmethod
    async def fetch_day(self, access_token: str, data_type: str, day: date, *,
                        page_token: str | None = None) -> VendorPage:
        """One page of ``data_type`` on ``day`` (of the whole snapshot for an undated type);
        ``next_token`` on the page says whether more follow."""

    async def aclose(self) -> None:  # noqa: B027 - a default: most clients hold nothing of their own
        """Release what the client holds (threads, sessions it made); the shared session is the caller's."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.aclose()
