"""The portal end to end against the vendor simulator and a real vault (Kafka replaced by a
recording producer): sign in, link through the consent page, status, unlink, leave, download,
languages, error pages, headers, metrics, and that no identifier ever reaches a page."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from prometheus_client import REGISTRY

from connectors.simulator.service import RunningSimulator, SimulatorOptions, running_simulator
from connectors.vault import TokenVault, open_vault
from connectors.vendors.registry import build_clients
from models.ids import research_id
from models.participants import LinkStatus
from models.providers import Provider
from portal.app import PORTAL, build_portal_app, content_security_policy
from portal.invitations import invitation_token
from runtime.settings import Settings
from sinks.dataset import Dataset
from tests.builders import RecordingProducer


@dataclass
class Rig:
    settings: Settings
    sim: RunningSimulator
    vault: TokenVault
    producer: RecordingProducer
    http: aiohttp.ClientSession  # the participant's browser at the vendor
    client: TestClient[Any, Any]  # the participant's browser at the portal
    pages: list[str] = field(default_factory=list)  # every portal page seen, for the identifier scan

    @property
    def participant(self) -> str:
        return self.sim.world.cohort.participant_ids[0]

    def rid(self, participant: str | None = None) -> str:
        return research_id(self.settings.require_secret_key(), participant or self.participant)

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str]:
        answer = await self.client.get(path, allow_redirects=False, **kwargs)
        text = await answer.text() if answer.content_type == "text/html" else ""
        self.pages.append(text)
        return answer.status, text

    async def sign_in(self, participant: str | None = None) -> None:
        answer = await self.client.get(f"/i/{invitation_token(self.settings, participant or self.participant)}",
                                       allow_redirects=False)
        assert answer.status == 303 and answer.headers["Location"] == "/me"

    async def csrf(self) -> str:
        status, page = await self.get("/link")  # a page with forms whether linked or not
        assert status == 200
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found is not None
        return found.group(1)

    async def start_link(self, provider: Provider = Provider.GOOGLE_HEALTH) -> str:
        """POST /link; the vendor consent URL it redirects to."""
        answer = await self.client.post("/link", data={"csrf": await self.csrf(), "provider": provider.value},
                                        allow_redirects=False)
        assert answer.status == 303, await answer.text()
        return answer.headers["Location"]

    async def consent(self, url: str, *, participant: str | None = None, decision: str = "allow") -> str:
        """Press Allow (or Deny) on the simulator's consent page: the callback path and query."""
        async with self.http.get(url) as page:
            assert page.status == 200 and "<form" in await page.text()
        form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        form.update(participant=participant or self.participant, decision=decision)
        async with self.http.post(url.split("?", 1)[0], data=form, allow_redirects=False) as answer:
            assert answer.status == 302
            back = urlsplit(answer.headers["Location"])
        assert back.path == "/link/callback"
        return f"{back.path}?{back.query}"

    async def link(self, provider: Provider = Provider.GOOGLE_HEALTH) -> str:
        """Link through the consent page; the callback URL used (for replays)."""
        callback = await self.consent(await self.start_link(provider))
        status, _ = await self.get(callback)
        assert status == 303
        return callback


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    base = Settings.model_validate({"env": "demo", "data_dir": tmp_path, "backfill_days": 3})
    async with running_simulator(base, SimulatorOptions.complete(participants=2, days=2)) as sim, \
            open_vault(base) as vault, aiohttp.ClientSession() as http:
        settings = base.with_overrides(vendor_api_base=sim.url)
        producer = RecordingProducer()
        clients = build_clients(settings.vendors, http)
        app = build_portal_app(settings, vault, producer, clients,  # type: ignore[arg-type]
                               Dataset(settings.dataset_location))
        async with TestClient(TestServer(app)) as client:
            yield Rig(settings, sim, vault, producer, http, client)


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"wearables_{name}", labels) or 0.0


async def test_the_home_page_says_to_use_the_invitation(rig: Rig) -> None:
    answer = await rig.client.get("/")
    page = await answer.text()
    assert answer.status == 200 and '<html lang="en">' in page
    assert "invitation link the study sent you" in page
    assert 'href="/lang/es?next=/"' in page and "Español" in page and "English" in page
    assert '<main id="main"' in page and 'href="#main"' in page
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["Cache-Control"] == "no-store"
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and f"form-action 'self' {rig.sim.url}" in policy
    css = await rig.client.get("/static/portal.css")
    assert css.status == 200 and "min-height: 44px" in await css.text()


async def test_the_policy_allows_the_real_consent_hosts_outside_the_simulator() -> None:
    settings = Settings.model_validate({"env": "demo"})
    policy = content_security_policy(settings, dict.fromkeys(Provider))  # type: ignore[arg-type]
    assert "https://accounts.google.com" in policy and "https://www.fitbit.com" in policy


async def test_sign_in_then_link_with_google_then_stop_sharing(rig: Rig) -> None:
    status, page = await rig.get("/me")
    assert status == 401 and "invitation link" in page
    await rig.sign_in()
    status, page = await rig.get("/me")
    assert status == 200 and "Not linked" in page and "Download my data" in page
    before = _metric("portal_pages_total", page="me", status="200")
    await rig.link()
    status, page = await rig.get("/me")
    assert status == 200 and ">Linked<" in page and "Google Health" in page
    assert "Steps" in page and "Resting heart rate" in page and "Sleep" in page and "Devices" in page
    assert "Change what you share" in page and "Stop sharing" in page and 'role="img"' in page
    assert _metric("portal_pages_total", page="me", status="200") == before + 1
    link = await rig.vault.get(rig.rid())
    assert link is not None and link.status is LinkStatus.LINKED and link.provider is Provider.GOOGLE_HEALTH
    topics = [topic for topic, _, _ in rig.producer.sent]
    assert rig.settings.topic("participants") in topics and rig.settings.topic("fetch-requests") in topics
    answer = await rig.client.post("/unlink", data={"csrf": await rig.csrf()}, allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"] == "/me"
    status, page = await rig.get("/me")
    assert "Not linked" in page
    link = await rig.vault.get(rig.rid())
    assert link is not None and link.status is LinkStatus.REVOKED


async def test_a_partial_consent_shares_only_what_was_ticked(rig: Rig) -> None:
    await rig.sign_in()
    url = await rig.start_link()
    scopes = parse_qs(urlsplit(url).query)["scope"][0].split()
    sleep = [s for s in scopes if "sleep" in s]
    assert sleep
    async with rig.http.get(url):
        pass
    form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    form.update(participant=rig.participant, decision="allow", scope=" ".join(s for s in scopes if s not in sleep))
    async with rig.http.post(url.split("?", 1)[0], data=form, allow_redirects=False) as answer:
        back = urlsplit(answer.headers["Location"])
    status, _ = await rig.get(f"{back.path}?{back.query}")
    assert status == 303
    _, page = await rig.get("/me")
    shared = page.split("What you share", 1)[1].split("</ul>", 1)[0]
    assert "Steps" in shared and "Sleep" not in shared


async def test_a_fitbit_link_is_offered_in_the_demo_and_told_to_move_to_google(rig: Rig) -> None:
    await rig.sign_in()
    status, page = await rig.get("/link")
    assert status == 200 and "Connect with Google Health" in page and "Connect with Fitbit" in page
    assert "untick" in page
    await rig.link(Provider.FITBIT)
    _, page = await rig.get("/me")
    assert "Fitbit's old connection is closing" in page and "Connect with Google Health" in page
    await rig.link(Provider.GOOGLE_HEALTH)  # the move: same research id, the notice is gone
    _, page = await rig.get("/me")
    assert "old connection is closing" not in page and "Google Health" in page
    link = await rig.vault.get(rig.rid())
    assert link is not None and link.provider is Provider.GOOGLE_HEALTH


async def test_outside_the_demo_fitbit_is_neither_offered_nor_accepted(tmp_path: Path) -> None:
    settings = Settings.model_validate({
        "env": "production", "data_dir": tmp_path, "secret_key": "Zq7-vR2mXk9LpW4tYb8NcE1sHf6GjD3u",
        "vault_key": Fernet.generate_key().decode(), "session_key": Fernet.generate_key().decode(), "redirect_uri": "https://portal.example.org/link/callback",
        "fitbit_client_secret": "f", "google_client_secret": "g"})
    async with open_vault(settings) as vault, aiohttp.ClientSession() as http:
        app = build_portal_app(settings, vault, RecordingProducer(), build_clients(settings.vendors, http),  # type: ignore[arg-type]
                               Dataset(settings.dataset_location))
        async with TestClient(TestServer(app)) as client:
            answer = await client.get(f"/i/{invitation_token(settings, 'P1')}", allow_redirects=False)
            assert answer.status == 303
            page = await (await client.get("/link")).text()
            assert "Connect with Google Health" in page and "Fitbit" not in page
            token = re.search(r'name="csrf" value="([^"]+)"', page)
            assert token is not None
            answer = await client.post("/link", data={"csrf": token.group(1), "provider": "fitbit"})
            assert answer.status == 400 and "cannot be connected" in await answer.text()
            answer = await client.post("/link", data={"csrf": token.group(1), "provider": "google_health"},
                                       allow_redirects=False)
            assert answer.status == 303 and answer.headers["Location"].startswith("https://accounts.google.com/")


async def test_past_the_daily_grant_budget_google_is_not_started(rig: Rig, tmp_path: Path) -> None:
    rig.client.server.app[PORTAL].settings = rig.settings.with_overrides(google_daily_grant_budget=0)
    await rig.sign_in()
    before = _metric("portal_link_refusals_total", reason="daily_grant_budget")
    answer = await rig.client.post("/link", data={"csrf": await rig.csrf(), "provider": "google_health"},
                                   allow_redirects=False)
    assert answer.status == 503 and "try again tomorrow" in await answer.text()
    assert _metric("portal_link_refusals_total", reason="daily_grant_budget") == before + 1


async def test_saying_no_on_the_consent_page_connects_nothing(rig: Rig) -> None:
    await rig.sign_in()
    callback = await rig.consent(await rig.start_link(), decision="deny")
    status, page = await rig.get(callback)
    assert status == 200 and "You chose not to share. Nothing was connected." in page
    assert await rig.vault.get(rig.rid()) is None and rig.producer.sent == []


async def test_leaving_with_purge(rig: Rig) -> None:
    await rig.sign_in()
    await rig.link()
    status, page = await rig.get("/leave")
    assert status == 200 and "Also delete all the data the study has received from your device" in page
    assert 'for="confirm"' in page and "required" in page
    sent = len(rig.producer.sent)
    answer = await rig.client.post("/leave", data={"csrf": await rig.csrf(), "purge": "1"}, allow_redirects=False)
    assert answer.status == 400 and "tick the box" in await answer.text()  # not confirmed: nothing done
    assert len(rig.producer.sent) == sent
    answer = await rig.client.post("/leave", data={"csrf": await rig.csrf(), "purge": "1", "confirm": "1"},
                                   allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"] == "/left?purged=1"
    status, page = await rig.get("/left?purged=1")
    assert "You have left the study." in page and "Your data is being deleted" in page
    assert await rig.vault.get(rig.rid()) is None  # purged: the vault row is gone
    topics = [topic for topic, _, _ in rig.producer.sent[sent:]]
    assert rig.settings.topic("audit") in topics and rig.settings.topic("samples") in topics
    status, _ = await rig.get("/me")
    assert status == 401  # the session ended with the study


async def test_leaving_without_purge_keeps_the_data(rig: Rig) -> None:
    await rig.sign_in()
    await rig.link()
    answer = await rig.client.post("/leave", data={"csrf": await rig.csrf(), "confirm": "1"}, allow_redirects=False)
    assert answer.headers["Location"] == "/left?purged=0"
    _, page = await rig.get("/left?purged=0")
    assert "You have left the study." in page and "being deleted" not in page
    link = await rig.vault.get(rig.rid())
    assert link is not None and link.status is LinkStatus.WITHDRAWN


async def test_download_is_a_zip_of_ones_own_data(rig: Rig) -> None:
    status, _ = await rig.get("/me/download")
    assert status == 401
    await rig.sign_in()
    answer = await rig.client.get("/me/download")
    assert answer.status == 200 and answer.content_type == "application/zip"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="my-wearable-data.zip"'
    assert answer.headers["Cache-Control"] == "no-store"
    assert zipfile.ZipFile(io.BytesIO(await answer.read())).namelist()


async def test_spanish_from_the_browser_and_from_the_switch(rig: Rig) -> None:
    await rig.sign_in()
    status, page = await rig.get("/me", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
    assert status == 200 and '<html lang="es">' in page and "No vinculado" in page
    answer = await rig.client.get("/lang/es?next=/link", allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"] == "/link"
    await rig.link()
    _, page = await rig.get("/me")
    assert '<html lang="es">' in page and ">Vinculado<" in page and "Dejar de compartir" in page
    answer = await rig.client.get("/lang/en?next=/me", allow_redirects=False)
    _, page = await rig.get("/me", headers={"Accept-Language": "es"})
    assert '<html lang="en">' in page and ">Linked<" in page  # the switch wins over the browser
    status, _ = await rig.get("/lang/fr?next=/me")
    assert status == 404


async def test_unknown_pages_are_a_clear_404(rig: Rig) -> None:
    status, page = await rig.get("/participants/P0001/download")
    assert status == 404 and "There is no page at this address." in page
    assert _metric("portal_pages_total", page="not_found", status="404") >= 1


async def test_no_page_shows_an_identifier_or_a_token(rig: Rig) -> None:
    await rig.sign_in()
    await rig.link()
    rid = rig.rid()
    vendor_user = await rig.vault.vendor_user(rid)
    tokens = await rig.vault.tokens(rid)
    assert vendor_user is not None and tokens is not None
    for path in ("/", "/me", "/link", "/leave", "/left?purged=1", "/nowhere", "/i/broken"):
        await rig.get(path)
    await rig.get("/me", headers={"Accept-Language": "es"})
    secrets = [rig.participant, rid, vendor_user, tokens[0].access_token, tokens[0].refresh_token,
               invitation_token(rig.settings, rig.participant)]
    assert len(rig.pages) > 8
    for page in rig.pages:
        for secret in secrets:
            assert secret not in page


async def test_my_data_chart_devices_and_the_days_table(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import date, datetime, timedelta

    from portal.my_data import DayPoint, DeviceStatus, MyData

    first = date(2026, 11, 1)
    days = tuple(DayPoint(first + timedelta(i), 8000 + i if i % 3 else None, 61.0 if i % 2 else None, i % 3 != 0)
                 for i in range(30))
    data = MyData(days_received=45, valid_days_30=20, days=days,
                  devices=(DeviceStatus("Charge 6", 80, datetime(2026, 11, 30, 8, 5)),))
    asked: list[str] = []

    def fake(dataset: Dataset, research_id: str, *, today: date) -> MyData:
        asked.append(research_id)
        return data

    monkeypatch.setattr("portal.app.my_data", fake)
    await rig.sign_in()
    _, page = await rig.get("/me")
    assert asked == [rig.rid()]
    assert "45" in page and "Charge 6" in page and "battery 80 percent" in page and "Nov 30, 2026" in page
    assert "<table>" in page and "8,001" in page and "days with data; on average" in page
    assert '<svg' in page and "<title" in page
    _, page = await rig.get("/me", headers={"Accept-Language": "es"})
    assert "batería al 80 por ciento" in page and "8.001" in page and "días con datos" in page


async def test_a_vendor_account_already_linked_for_someone_else_is_refused_in_plain_words(rig: Rig) -> None:
    first, second = rig.sim.world.cohort.participant_ids[:2]
    await rig.sign_in(first)
    await rig.link()
    await rig.sign_in(second)  # the second participant signs in at the vendor with the first one's account
    callback = await rig.consent(await rig.start_link(), participant=first)
    status, page = await rig.get(callback)
    assert status == 409 and "already connected for another person" in page
    assert await rig.vault.get(rig.rid(second)) is None
    kept = await rig.vault.get(rig.rid(first))
    assert kept is not None and kept.status is LinkStatus.LINKED  # the first link is untouched
