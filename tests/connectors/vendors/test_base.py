"""The vendor base: every exception the HTTP libraries raise when no answer came becomes
``VendorUnavailable`` (and nothing else does); ``retrying`` retries only that."""

from __future__ import annotations

import asyncio
import types

import aiohttp.client_exceptions
import fitbit.exceptions
import pytest
import requests.exceptions

from connectors.errors import RateLimited, VendorRejected, VendorUnavailable
from connectors.vendors.base import TRANSPORT_ERRORS, VendorClient, retrying, translate_errors
from connectors.vendors.registry import VENDOR_CLIENTS
from models.providers import Provider

# Raised by none of our HTTP calls, so deliberately not mapped (a new class in a library
# upgrade fails the test below until it is mapped or listed here with its reason).
_NOT_TRANSPORT = {
    aiohttp.client_exceptions.WSMessageTypeError,  # websockets only
}


def _exception_classes(module: types.ModuleType) -> set[type[BaseException]]:
    return {value for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, BaseException) and not issubclass(value, Warning)
            and value.__module__ == module.__name__}


_LIBRARIES = (_exception_classes(aiohttp.client_exceptions) | _exception_classes(requests.exceptions)
              | {TimeoutError, asyncio.TimeoutError, fitbit.exceptions.Timeout}) - _NOT_TRANSPORT


def _name(kind: type[BaseException]) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


@pytest.mark.parametrize("kind", sorted(_LIBRARIES, key=_name), ids=_name)
@pytest.mark.parametrize("provider", list(Provider))
def test_every_transport_exception_is_mapped_to_vendor_unavailable(kind: type[BaseException],
                                                                   provider: Provider) -> None:
    assert issubclass(kind, TRANSPORT_ERRORS)
    with pytest.raises(VendorUnavailable) as raised:
        with translate_errors(provider):
            raise kind.__new__(kind)  # constructors differ; the class is what is mapped
    assert raised.value.provider is provider and raised.value.status is None
    assert kind.__name__ in str(raised.value)
    assert raised.value.__suppress_context__  # the library's message may quote a URL with a token


def test_our_errors_and_other_exceptions_pass_through_unchanged() -> None:
    limited = RateLimited("429", provider=Provider.FITBIT, retry_after=5.0)
    for error in (limited, ValueError("a bug"), KeyError("x"), asyncio.CancelledError()):
        with pytest.raises(type(error)) as raised:
            with translate_errors(Provider.FITBIT):
                raise error
        assert raised.value is error


async def test_retrying_retries_unavailable_only_and_at_most_attempts_times() -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise VendorUnavailable("503", provider=Provider.GOOGLE_HEALTH, status=503)
        return "page"

    assert await retrying(flaky, attempts=3, base_s=0.001) == "page" and len(calls) == 3
    calls.clear()
    with pytest.raises(VendorUnavailable):
        await retrying(flaky, attempts=2, base_s=0.001)
    assert len(calls) == 2

    async def rejected() -> str:
        calls.append(1)
        raise VendorRejected("400", provider=Provider.GOOGLE_HEALTH, status=400)

    calls.clear()
    with pytest.raises(VendorRejected):
        await retrying(rejected, attempts=5, base_s=0.001)
    assert len(calls) == 1


def test_every_registered_client_is_a_complete_vendor_client() -> None:
    assert set(VENDOR_CLIENTS) == set(Provider)
    for provider, client in VENDOR_CLIENTS.items():
        assert issubclass(client, VendorClient) and client.provider is provider
        assert not getattr(client, "__abstractmethods__", None), f"{client.__name__} leaves methods abstract"
        assert client.data_types and all(isinstance(t, str) for t in client.data_types)
        assert set(client.undated_types) <= set(client.data_types)


def test_a_grant_reads_the_data_types_whose_scope_it_holds_and_one_without_a_scope_all() -> None:
    for client in VENDOR_CLIENTS.values():
        every = client.data_types
        assert VendorClient.granted(client.__new__(client), "") == every  # the default: everything
    fitbit = VENDOR_CLIENTS[Provider.FITBIT].__new__(VENDOR_CLIENTS[Provider.FITBIT])
    scope_of = {t: ("sleep" if t == "sleep" else "activity") for t in fitbit.data_types}
    assert fitbit._granted_by("activity profile", scope_of) == tuple(t for t in fitbit.data_types if t != "sleep")
    assert fitbit._granted_by("profile", scope_of) == ()
    assert fitbit._granted_by("", scope_of) == fitbit.data_types  # RFC 6749 §5.1: left out, as asked
