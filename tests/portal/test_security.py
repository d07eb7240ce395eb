"""The portal under attack: every attempt gets a 4xx and a clear page, and nothing is stored in
the vault or published: forged or stale OAuth states, replayed codes, a missing PKCE verifier,
forged or missing CSRF tokens, tampered or expired invitations, someone else's data, open redirects."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.fernet import Fernet, MultiFernet

import portal.app
from portal.invitations import invitation_token
from portal.security import SESSION_COOKIE, is_local_path, safe_next, session_storage
from runtime.settings import Settings
from sinks.dataset import Dataset
from tests.portal.test_app import Rig, rig

__all__ = ["rig"]

COULD_NOT_FINISH = "We could not finish connecting your account. Please start again."


async def _nothing_stored(rig: Rig) -> None:
    assert await rig.vault.get(rig.rid()) is None
    assert rig.producer.sent == []


async def test_a_state_that_is_not_the_pending_one_is_refused(rig: Rig) -> None:
    await rig.sign_in()
    callback = await rig.consent(await rig.start_link())
    forged = callback.replace("state=", "state=x")
    status, page = await rig.get(forged)
    assert status == 400 and COULD_NOT_FINISH in page
    await _nothing_stored(rig)
    status, page = await rig.get(callback)  # the pending state was spent by the forged attempt
    assert status == 400 and COULD_NOT_FINISH in page
    await _nothing_stored(rig)


async def test_a_replayed_authorization_code_is_refused(rig: Rig) -> None:
    await rig.sign_in()
    callback = await rig.link()
    link = await rig.vault.get(rig.rid())
    sent = len(rig.producer.sent)
    status, page = await rig.get(callback)
    assert status == 400 and COULD_NOT_FINISH in page
    assert len(rig.producer.sent) == sent and await rig.vault.get(rig.rid()) == link
    # a fresh state with the spent code: the vendor says invalid_grant
    spent_code = callback.split("code=", 1)[1].split("&", 1)[0]
    fresh = await rig.consent(await rig.start_link())
    replay = fresh.split("?", 1)[0] + "?code=" + spent_code + "&state=" + fresh.split("state=", 1)[1]
    status, page = await rig.get(replay)
    assert status == 400 and COULD_NOT_FINISH in page
    assert len(rig.producer.sent) == sent and await rig.vault.get(rig.rid()) == link


async def test_an_expired_state_is_refused(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    await rig.sign_in()
    callback = await rig.consent(await rig.start_link())
    real = time.time
    monkeypatch.setattr(portal.app.time, "time", lambda: real() + 601)
    status, page = await rig.get(callback)
    assert status == 400 and COULD_NOT_FINISH in page
    await _nothing_stored(rig)


async def test_a_session_without_the_pkce_verifier_is_refused(rig: Rig) -> None:
    await rig.sign_in()
    url = await rig.start_link()
    callback = await rig.consent(url)
    state = callback.split("state=", 1)[1]
    # the cookie is ours to forge in a test: the same session, its pending consent without a verifier
    storage = session_storage(rig.settings)
    cookie = rig.client.session.cookie_jar.filter_cookies(rig.client.make_url("/"))[SESSION_COOKIE].value
    data = storage._decoder(storage._cipher.decrypt(cookie.encode()).decode())
    del data["session"]["oauth"][state]["verifier"]
    forged = storage._cipher.encrypt(storage._encoder(data).encode()).decode()
    rig.client.session.cookie_jar.update_cookies({SESSION_COOKIE: forged}, response_url=rig.client.make_url("/"))
    status, page = await rig.get(callback)
    assert status == 400 and COULD_NOT_FINISH in page
    await _nothing_stored(rig)


@pytest.mark.parametrize("token", [None, "", "wrong"], ids=["missing", "empty", "wrong"])
async def test_a_post_without_the_right_csrf_token_is_refused(rig: Rig, token: str | None) -> None:
    await rig.sign_in()
    await rig.csrf()  # the session has a token; the form does not carry it
    form = {} if token is None else {"csrf": token}
    for path, fields in (("/link", {"provider": "google_health"}), ("/unlink", {}),
                         ("/leave", {"confirm": "1", "purge": "1"})):
        answer = await rig.client.post(path, data={**form, **fields}, allow_redirects=False)
        assert answer.status == 403, path
        assert "did not come from this site, so nothing was changed" in await answer.text()
    await _nothing_stored(rig)
    status, _ = await rig.get("/me")
    assert status == 200  # still signed in: nothing left


async def test_a_tampered_invitation_is_refused(rig: Rig) -> None:
    token = invitation_token(rig.settings, rig.participant)
    tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    for bad in (tampered, "not-a-token", "x" * 300):
        status, page = await rig.get(f"/i/{bad}")
        assert status == 400 and "This link is not valid or has expired. Ask the study team for a new one." in page
    status, _ = await rig.get("/me")
    assert status == 401  # nothing stored in the session
    await _nothing_stored(rig)


async def test_an_expired_invitation_is_refused(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    token = invitation_token(rig.settings, rig.participant)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + rig.settings.portal.invitation_max_age + 120)
    status, page = await rig.get(f"/i/{token}")
    monkeypatch.setattr(time, "time", real)
    assert status == 400 and "has expired" in page
    status, _ = await rig.get("/me")
    assert status == 401
    await _nothing_stored(rig)


async def test_only_ones_own_data_is_ever_downloaded(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_zip(dataset: Dataset, research_id: str) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("rows.csv", f"research_id\n{research_id}\n")
        return buffer.getvalue()

    monkeypatch.setattr(portal.app, "download_zip", fake_zip)
    a, b = rig.sim.world.cohort.participant_ids[:2]
    await rig.sign_in(a)
    attempts = ["/me/download", f"/me/download?research_id={rig.rid(b)}", f"/me/download?participant={b}",
                f"/participants/{rig.rid(b)}/download", f"/participants/{b}/download", f"/me/download/{rig.rid(b)}",
                f"/download?research_id={rig.rid(b)}"]
    for attempt in attempts:
        answer = await rig.client.get(attempt, allow_redirects=False)
        if answer.status == 200:
            rows = zipfile.ZipFile(io.BytesIO(await answer.read())).read("rows.csv").decode()
            assert rig.rid(a) in rows and rig.rid(b) not in rows, attempt
        else:
            assert answer.status == 404, attempt
            assert "There is no page at this address." in await answer.text()
            assert b not in await answer.text()


@pytest.mark.parametrize("target", ["https://evil.example", "//evil.example", "/\\evil.example", "\\\\evil.example",
                                    "javascript:alert(1)", "/\t/evil.example"])
async def test_an_open_redirect_gets_nowhere(rig: Rig, target: str) -> None:
    answer = await rig.client.get("/lang/es", params={"next": target}, allow_redirects=False)
    assert answer.status == 400 and "Location" not in answer.headers
    assert "tries to send you to another website" in await answer.text()


def test_local_paths() -> None:
    assert is_local_path("/me") and is_local_path("/link?x=1")
    for bad in ("", "me", "//evil.example", "/\\evil", "https://evil.example", "/\nx", "http:/x"):
        assert not is_local_path(bad)
        assert safe_next(bad) == "/me"
    assert safe_next("/link") == "/link" and safe_next(None) == "/me"


async def test_the_session_cookie_is_httponly_lax_and_rotates_keys(rig: Rig, tmp_path: Path) -> None:
    answer = await rig.client.get(f"/i/{invitation_token(rig.settings, rig.participant)}", allow_redirects=False)
    header = answer.headers["Set-Cookie"]
    assert header.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in header and "SameSite=Lax" in header
    assert "Secure" not in header  # http in the test; https public URLs get Secure
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    base = {"env": "production", "data_dir": tmp_path, "secret_key": "Zq7-vR2mXk9LpW4tYb8NcE1sHf6GjD3u",
            "portal_public_url": "https://portal.example.org"}
    before = session_storage(Settings.model_validate({**base, "session_key": old}))
    after = session_storage(Settings.model_validate({**base, "session_key": f"{new},{old}"}))
    assert isinstance(after._cipher, MultiFernet) and after.cookie_params["secure"] is True
    made = before._cipher.encrypt(f'{{"session": {{"lang": "es"}}, "created": {int(time.time())}}}'.encode())
    request = _request_with_cookie(made.decode())
    session = await after.load_session(request)
    assert session.get("lang") == "es"  # an old key still opens the cookie after a rotation


def _request_with_cookie(value: str) -> web.Request:
    from aiohttp.test_utils import make_mocked_request

    return make_mocked_request("GET", "/", headers={"Cookie": f"{SESSION_COOKIE}={value}"})
