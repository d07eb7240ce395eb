"""The portal served on a socket: ``running_portal`` with its own vendor clients, and
``PortalService`` with its own producer on the embedded broker, on any free port."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connectors.vault import open_vault
from models.errors import ConfigurationError
from portal.invitations import invitation_token
from portal.service import PortalService, running_portal
from runtime.settings import Settings
from tests.builders import RecordingProducer


async def test_running_portal_serves_on_a_free_port(tmp_path: Path) -> None:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path})
    async with open_vault(settings) as vault:
        # unsafe: the jar keeps cookies of an IP address (127.0.0.1), as a browser does
        async with running_portal(settings, vault, RecordingProducer(), port=0) as url, \
                aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # type: ignore[arg-type]
            assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
            async with http.get(url + "/") as answer:
                assert answer.status == 200 and "invitation link" in await answer.text()
            async with http.get(f"{url}/i/{invitation_token(settings, 'P1')}") as answer:
                assert answer.status == 200 and "Not linked" in await answer.text()  # followed to /me


async def test_outside_the_demo_a_session_key_is_required(tmp_path: Path) -> None:
    settings = Settings.model_validate({"env": "production", "data_dir": tmp_path,
                                        "secret_key": "Zq7-vR2mXk9LpW4tYb8NcE1sHf6GjD3u",
                                        "fitbit_client_secret": "f", "google_client_secret": "g"})
    with pytest.raises(ConfigurationError, match="WEARABLES_SESSION_KEY"):
        async with running_portal(settings, None, RecordingProducer(), port=0):  # type: ignore[arg-type]
            pass


async def test_the_portal_service(settings_factory: Callable[..., Settings], broker: Any) -> None:
    settings = settings_factory()
    async with open_vault(settings) as vault:
        service = PortalService(settings, bootstrap=broker.bootstrap, vault=vault, port=0)
        assert service.name == "portal" and service.url == ""
        async with service.running(), aiohttp.ClientSession() as http:
            assert service.ready() and service.url.startswith("http://127.0.0.1:")
            async with http.get(service.url + "/me") as answer:
                assert answer.status == 401 and "invitation link" in await answer.text()
        assert not service.ready()
