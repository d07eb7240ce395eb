"""Every vendor client we have, and the one factory that builds them from Settings.

Adding a vendor: its ``<vendor>_spec.py`` and its ``VendorClient`` subclass, one line in
``VENDOR_CLIENTS`` below, its endpoints and credentials in ``endpoints.py``, and a dialect in the
simulator; the contract tests then run the new client against the simulator unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import aiohttp

from connectors.vendors.base import VendorClient
from connectors.vendors.endpoints import credentials, endpoints
from connectors.vendors.fitbit import FitbitWebClient
from connectors.vendors.google_health import GoogleHealthClient
from models.providers import Provider
from runtime.settings import VendorSettings

__all__ = ["VENDOR_CLIENTS", "aclose_all", "build_clients"]

VENDOR_CLIENTS: Mapping[Provider, type[VendorClient]] = {
    client.provider: client for client in (FitbitWebClient, GoogleHealthClient)
}


def build_clients(vendors: VendorSettings, session: aiohttp.ClientSession, *,
                  providers: Iterable[Provider] | None = None) -> dict[Provider, VendorClient]:
    """A client per provider (every registered one unless ``providers`` says), on ``session``.

    The only place vendor clients read the settings (their section): endpoints, credentials and the call timeout.
    Close them with ``aclose_all``; the session stays the caller's.
    """
    return {provider: VENDOR_CLIENTS[provider].build(
        endpoints=endpoints(vendors, provider), credentials=credentials(vendors, provider),
        timeout=vendors.http_timeout, session=session)
        for provider in (VENDOR_CLIENTS if providers is None else providers)}


async def aclose_all(clients: Mapping[Provider, VendorClient]) -> None:
    """Close every client (their threads and own sessions)."""
    for client in clients.values():
        await client.aclose()
