"""The registry builds every vendor client from Settings on the caller's session, and closes them."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from connectors.vendors.registry import VENDOR_CLIENTS, aclose_all, build_clients
from models.providers import Provider
from runtime.settings import Settings


async def test_one_client_per_registered_provider_or_the_ones_asked_for(tmp_path: Path) -> None:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path, "vendor_api_base": "http://127.0.0.1:9"})
    async with aiohttp.ClientSession() as session:
        clients = build_clients(settings.vendors, session)
        assert {p: type(c) for p, c in clients.items()} == dict(VENDOR_CLIENTS)
        assert all(client.provider is provider for provider, client in clients.items())
        only = build_clients(settings.vendors, session, providers=[Provider.GOOGLE_HEALTH])
        assert list(only) == [Provider.GOOGLE_HEALTH]
        await aclose_all(clients)
        await aclose_all(only)
        with pytest.raises(RuntimeError):  # the Fitbit client's threads are gone
            await clients[Provider.FITBIT].whoami("token")


def test_every_provider_has_a_registered_client_speaking_for_it() -> None:
    assert set(VENDOR_CLIENTS) == set(Provider)
    assert all(client.provider is provider for provider, client in VENDOR_CLIENTS.items())
