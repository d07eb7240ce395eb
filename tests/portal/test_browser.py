"""The participant portal in a real browser (Chromium), in English and in Spanish, against the
whole stack on the embedded broker: simulator, gateway, scheduler, worker, sink and portal.

A participant opens their invitation, connects Google Health on the (simulated) vendor's consent
page, waits for their chart to fill, downloads their data, stops sharing, and leaves the study
asking for their data to be deleted. Every page is checked for what it shows, photographed at
360 px and 1280 px (``WEARABLES_TEST_ARTIFACTS`` or ``var/test-artifacts/portal/<language>``),
must not scroll sideways on a phone, and must have no serious or critical axe-core violation.
At the end nothing issued during the run (participant ids, research ids, vendor user ids,
tokens) may be in a page the browser saw, the vault's file, a log record or the metrics.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from playwright.async_api import Page, expect

from connectors.simulator.service import SimulatorOptions
from models.ids import research_id
from models.providers import Provider
from portal.invitations import invitation_url
from portal.service import running_portal
from runtime.settings import Settings
from sinks.runner import SinkRunner
from tests.conftest import worker
from tests.connectors.stack import connector_stack
from tests.portal.browser import Recorder, artifacts_dir, chromium, free_port, leaks

pytestmark = pytest.mark.integration

DATA_WAIT_S = 90.0

TEXT = {
    "en": {
        "sign_in": "Please sign in", "home": "Share your wearable data with the study", "my_page": "My page",
        "linked": "Linked", "not_linked": "Not linked", "connect": "Connect your account",
        "connect_google": "Connect with Google Health", "days": "Days of data received",
        "download": "Download my data", "stop": "Stop sharing", "leave": "Leave the study",
        "purge": "Also delete all the data the study has received from your device",
        "confirm": "Yes, I want to leave the study", "left": "You have left the study.",
        "deleting": "Your data is being deleted.",
    },
    "es": {
        "sign_in": "Inicie sesión, por favor", "home": "Comparta los datos de su pulsera o reloj con el estudio",
        "my_page": "Mi página", "linked": "Vinculado", "not_linked": "No vinculado", "connect": "Conectar su cuenta",
        "connect_google": "Conectar con Google Health", "days": "Días de datos recibidos",
        "download": "Descargar mis datos", "stop": "Dejar de compartir", "leave": "Dejar el estudio",
        "purge": "Borrar también todos los datos que el estudio ha recibido de su dispositivo",
        "confirm": "Sí, quiero dejar el estudio", "left": "Ha dejado el estudio.",
        "deleting": "Sus datos se están borrando.",
    },
}


async def _status(page: Page, text: dict[str, str], linked: bool) -> None:
    await expect(page.locator("p.status")).to_have_text(text["linked" if linked else "not_linked"])


async def _days_with_data(page: Page, text: dict[str, str]) -> int:
    figure = await page.locator(".facts div").filter(has_text=text["days"]).locator("dd").inner_text()
    return int("".join(ch for ch in figure if ch.isdigit()) or 0)


async def _wait_for_data(page: Page, text: dict[str, str]) -> tuple[int, int]:
    """Reload once a second until the chart has bars and the days-of-data figure is above zero."""
    deadline = time.monotonic() + DATA_WAIT_S
    while True:
        bars, days = await page.locator("figure.chart svg .bar").count(), await _days_with_data(page, text)
        if (bars and days) or time.monotonic() > deadline:
            return bars, days
        await asyncio.sleep(1.0)
        await page.reload()


def _zip_rows(body: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name: list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))
                for name in archive.namelist() if name.endswith(".csv")}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("language", ["en", "es"])
async def test_a_participant_joins_shares_downloads_and_leaves_in_a_real_browser(
        language: str, settings_factory: Callable[..., Settings], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    # aiosqlite logs every statement with its parameters at DEBUG (a research id is one of them);
    # the services' log set-up holds it at WARNING as it does aiokafka (runtime/logging.py)
    caplog.set_level(logging.INFO, logger="aiosqlite")
    text, recorder = TEXT[language], Recorder(artifacts_dir(language))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    options = SimulatorOptions.complete(participants=3, days=3, sync_interval_s=1.0, late_share=0.0,
                                        duplicate_share=0.0)
    async with connector_stack(settings_factory, options, backfill_days=3, poll_interval=3600, retry_base_delay=0.05,
                               sink_flush_interval=0.5, redirect_uri=f"{base}/link/callback",
                               portal_public_url=base) as stack, worker(stack.settings), \
            SinkRunner(stack.settings).running(), \
            running_portal(stack.settings, stack.vault, stack.producer, port=port) as url, chromium() as browser:
        settings, world = stack.settings, stack.sim.world
        assert url == base
        issued: list[str] = []  # every code, access and refresh token the vendor hands out, also those spent
        original = world.issue_tokens

        def issue_tokens(*args: Any, **kwargs: Any) -> tuple[str, str, int]:
            access, refresh, lifetime = original(*args, **kwargs)
            issued.extend((access, refresh))
            return access, refresh, lifetime

        original_code = world.issue_code

        def issue_code(*args: Any, **kwargs: Any) -> str:
            code = original_code(*args, **kwargs)
            issued.append(code)  # the authorization code is in the callback's URL, and must go no further
            return code

        monkeypatch.setattr(world, "issue_tokens", issue_tokens)
        monkeypatch.setattr(world, "issue_code", issue_code)
        participant = world.cohort.participant_ids[0]
        rid = research_id(settings.require_secret_key(), participant)
        context = await browser.new_context(
            accept_downloads=True,
            **({"locale": "es-ES", "extra_http_headers": {"Accept-Language": "es"}} if language == "es"
               else {"locale": "en-US"}))
        context.set_default_timeout(20_000)
        page = await context.new_page()

        # before the invitation: the start page, and "please sign in" for one's own page
        await page.goto(f"{url}/")
        await expect(page.get_by_role("heading", level=1)).to_have_text(text["home"])
        await recorder.visit(page, "home")
        await page.goto(f"{url}/me")
        await expect(page.get_by_role("heading", level=1)).to_have_text(text["sign_in"])
        await recorder.visit(page, "sign-in")
        # the error pages: a damaged invitation, a page that does not exist
        answer = await page.goto(f"{url}/i/not-an-invitation")
        assert answer is not None and answer.status == 400
        await recorder.visit(page, "bad-invitation")
        answer = await page.goto(f"{url}/nowhere")
        assert answer is not None and answer.status == 404
        await recorder.visit(page, "not-found")

        # the invitation signs in and leads to one's page: not linked yet
        await page.goto(invitation_url(settings, participant))
        await page.wait_for_url(f"{url}/me")
        await expect(page.get_by_role("heading", level=1)).to_have_text(text["my_page"])
        await _status(page, text, linked=False)
        await recorder.visit(page, "me-not-linked")
        if language == "en":  # the language switch, there and back
            await page.get_by_role("link", name="Español").click()
            await _status(page, TEXT["es"], linked=False)
            await expect(page.locator("html")).to_have_attribute("lang", "es")
            await recorder.visit(page, "me-switched-to-es")
            await page.get_by_role("link", name="English").click()
            await _status(page, text, linked=False)
            await expect(page.locator("html")).to_have_attribute("lang", "en")

        # connect Google Health: the portal's choice, then the vendor's consent page
        await page.get_by_role("link", name=text["connect"]).click()
        await page.wait_for_url(f"{url}/link")
        await expect(page.get_by_role("heading", level=1)).to_have_text(text["connect"])
        await recorder.visit(page, "link")
        await page.get_by_role("button", name=text["connect_google"]).click()
        await page.wait_for_url(f"{stack.sim.url}/**")
        await expect(page.get_by_role("button", name="Allow")).to_be_visible()
        await recorder.visit(page, "consent", ours=False)  # the vendor's page: it may name the participant
        await page.get_by_label("Signed in as participant").fill(participant)
        await page.get_by_role("button", name="Allow").click()
        await page.wait_for_url(f"{url}/me")
        await _status(page, text, linked=True)
        await expect(page.get_by_text("Google Health", exact=True)).to_be_visible()
        await recorder.visit(page, "me-linked")

        # the scheduler backfills, the worker and sink write: the chart fills
        bars, days = await _wait_for_data(page, text)
        assert bars > 0 and days > 0, f"no data on the page after {DATA_WAIT_S} s: {bars} bars, {days} days"
        await expect(page.locator("figure.chart figcaption")).to_be_visible()
        await recorder.visit(page, "me-with-data")

        # the download holds this participant's rows and nobody else's
        async with page.expect_download() as started:
            await page.get_by_role("link", name=text["download"]).click()
        download = await started.value
        assert download.suggested_filename == "my-wearable-data.zip"
        body = Path(await download.path()).read_bytes()
        tables = _zip_rows(body)
        assert "daily_summary.csv" in tables and len(tables["daily_summary.csv"]) >= 1
        for name, rows in tables.items():
            assert {row["person_id"] for row in rows} <= {rid}, name

        # stop sharing
        await page.get_by_role("button", name=text["stop"]).click()
        await page.wait_for_url(f"{url}/me")
        await _status(page, text, linked=False)
        assert world.account(Provider.GOOGLE_HEALTH, participant).revoked  # the grant ended at the vendor too
        assert await stack.vault.tokens(rid) is None  # and no fetch can be made for them any more
        await recorder.visit(page, "me-stopped")

        # leave the study, asking for the data to be deleted
        await page.get_by_role("link", name=text["leave"], exact=True).click()
        await page.wait_for_url(f"{url}/leave")
        await expect(page.get_by_role("heading", level=1)).to_have_text(text["leave"])
        await recorder.visit(page, "leave")
        await page.get_by_label(text["purge"]).check()
        await page.get_by_label(text["confirm"]).check()
        await page.get_by_role("button", name=text["leave"]).click()
        await page.wait_for_url(f"{url}/left?purged=1")
        await expect(page.get_by_role("heading", level=1)).to_have_text(text["left"])
        await expect(page.get_by_text(text["deleting"])).to_be_visible()
        await recorder.visit(page, "left")
        await context.close()

        assert await stack.vault.get(rid) is None
        accounts = world.accounts()
        tokens = [*issued, *world.access, *world.refresh]

    print("\n".join(["axe, moderate or minor:", *recorder.minor]) if recorder.minor else "axe: nothing at all")
    assert not recorder.problems, "\n".join(recorder.problems)
    assert len(recorder.shots) == 2 * recorder.visits
    for shot in recorder.shots:
        assert shot.is_file() and shot.stat().st_size > 0, shot

    # nothing issued in the run shows anywhere it should not
    cohort = list(world.cohort.participant_ids)
    research_ids = [research_id(settings.require_secret_key(), p) for p in cohort]
    vendor_ids = [i for account in accounts for i in (account.user_id, account.legacy_user_id)]
    assert accounts and tokens, "the run issued no account or token: the scan would prove nothing"
    vault_files = {f"vault file {path.name}": path.read_bytes()
                   for path in (settings.data_dir / "vault.sqlite", settings.data_dir / "vault.sqlite-wal")
                   if path.exists()}
    assert vault_files
    seen = {f"page {name}": html for name, html in recorder.pages.items()}
    logs, metrics = {"the logs": caplog.text}, {"the metrics": prometheus_client.generate_latest().decode()}
    everything = [*cohort, *research_ids, *vendor_ids, *tokens]
    # the vault encrypts tokens and vendor ids, and keys its rows by research id: once the one linked
    # participant left with their data deleted, not even that is in the file (SQLite's secure_delete)
    found = leaks(everything, {**seen, **logs, **metrics, **vault_files})
    assert not found, "\n".join(found)
