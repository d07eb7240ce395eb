"""The participant portal's aiohttp app: invitation, status and data, linking, unlinking, leaving.

Every page is rendered from ``portal/templates`` in the participant's language
(``portal.i18n``); every error is one clear page from ``error.html``. What a page may never
show, log or put in a URL: the participant id, the research id, the vendor's user id, a token.
The participant id lives only inside the encrypted session cookie (``portal.security``); the
research id is derived from it per request.

Routes (names are the ``page`` label of ``portal_pages_total``)::

    GET  /                 home           what this is; "use your invitation link"
    GET  /i/{token}        invitation     sign in with the invitation, 303 /me
    GET  /me               me             status, what is shared, your data and chart
    GET  /me/download      download       a zip of your own rows, nobody else's
    GET  /link             link           choose a vendor account
    POST /link             link_start     the vendor's consent page (OAuth2 + PKCE)
    GET  /link/callback    link_callback  the vendor's answer, then the link
    POST /unlink           unlink         stop sharing
    GET  /leave            leave          what leaving means; POST leaves (optionally purging)
    GET  /left             left           the confirmation
    GET  /lang/{code}      language       the language switch
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import Session, get_session, new_session, session_middleware
from aiokafka import AIOKafkaProducer
from babel.dates import format_skeleton
from markupsafe import Markup

from connectors.errors import VendorError
from connectors.linking import complete_link
from connectors.oauth import pkce_pair
from connectors.vault import AccountLinkedElsewhere, Link, TokenVault
from connectors.vendors.base import VendorClient
from connectors.vendors.endpoints import endpoints
from connectors.withdrawal import unlink, withdraw
from models.audit import Actor
from models.ids import research_id
from models.participants import LinkStatus
from models.providers import Provider
from portal.download import download_zip
from portal.i18n import (
    LANGUAGES,
    TEMPLATE_DIR,
    environment,
    format_day,
    format_number,
    format_timestamp,
    format_wall_clock,
    language_from_header,
    translations,
)
from portal.invitations import InvalidInvitation, read_invitation
from portal.my_data import ChartLabels, MyData, chart_svg, dates_of, my_data
from portal.security import CsrfRejected, csrf_middleware, csrf_token, is_local_path, safe_next, session_storage
from runtime.metrics import counter
from runtime.settings import Settings
from sinks.dataset import Dataset

__all__ = ["PORTAL", "Portal", "build_portal_app", "content_security_policy"]

logger = logging.getLogger(__name__)

#: the answers each page gives when all goes as it should (and the refusals the funnel shows), at 0 from the start
_EXPECTED = {"home": ("200",), "invitation": ("303", "400"), "me": ("200", "401"), "download": ("200",),
             "link": ("200",), "link_start": ("303", "503"), "link_callback": ("303", "400"), "unlink": ("303",),
             "leave": ("200",), "leave_confirm": ("303",), "left": ("200",), "language": ("303",),
             "not_found": ("404",)}
PAGES = counter("portal_pages_total", "Portal pages served, by route name and HTTP status", ["page", "status"],
                initial=[(page, status) for page, statuses in _EXPECTED.items() for status in statuses])
LINK_REFUSALS = counter("portal_link_refusals_total", "Links the portal did not start, by reason", ["reason"],
                        initial=[("daily_grant_budget",)])

PARTICIPANT = "participant"  # session key: the participant id (inside the encrypted cookie only)
LANGUAGE = "lang"
OAUTH = "oauth"
_STATE_TTL_S = 600.0  # a consent left open longer than this starts again (the vendor's codes live 10 minutes)
_DAY_S = 86400.0

PROVIDER_NAMES = {Provider.GOOGLE_HEALTH: "Google Health", Provider.FITBIT: "Fitbit"}
#: vendor data types → the plain-words kind the templates describe (``_macros.html``)
_KINDS = {
    "steps": "steps", "activities-steps-intraday": "steps",
    "heart-rate": "heart_rate", "activities-heart-intraday": "heart_rate",
    "daily-resting-heart-rate": "resting_heart_rate",
    "sleep": "sleep",
    "paired-devices": "devices", "devices": "devices",
    "activities-summary": "activity",
}
_ENV_KEYS = {language: web.AppKey(f"portal_jinja_{language}", jinja2.Environment) for language in LANGUAGES}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Problem(Exception):
    """A page that cannot be served as asked: rendered as ``error.html`` with ``kind``'s words."""

    def __init__(self, status: int, kind: str) -> None:
        super().__init__(kind)
        self.status, self.kind = status, kind


def content_security_policy(settings: Settings, providers: Mapping[Provider, VendorClient]) -> str:
    """Only our own styles and images; forms may go here and to the vendors' consent pages: the
    303 after ``POST /link`` that leads there is governed by ``form-action`` in Chromium."""
    origins = sorted({_origin(endpoints(settings.vendors, provider).authorize) for provider in providers})
    return ("default-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"form-action 'self' {' '.join(origins)}; frame-ancestors 'none'; base-uri 'none'").replace("  ", " ")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


@dataclass(frozen=True)
class _Choice:
    value: str
    name: str
    kinds: tuple[str, ...]


class Portal:
    """The handlers, over what they need: settings, vault, producer, vendor clients, dataset."""

    def __init__(self, settings: Settings, vault: TokenVault, producer: AIOKafkaProducer,
                 clients: Mapping[Provider, VendorClient], dataset: Dataset) -> None:
        self.settings, self.vault, self.producer, self.clients, self.dataset = (
            settings, vault, producer, clients, dataset)

    # ------------------------------------------------------------------ helpers
    def allowed(self, provider: Provider) -> bool:
        """Google always; Fitbit's Web API is being switched off, so only the demo offers it."""
        if provider not in self.clients:
            return False
        return provider is Provider.GOOGLE_HEALTH or (provider is Provider.FITBIT and self.settings.is_demo)

    def kinds(self, provider: Provider, denied: tuple[str, ...] = ()) -> tuple[str, ...]:
        client = self.clients.get(provider)
        types = () if client is None else client.data_types
        return tuple(dict.fromkeys(_KINDS.get(t, "other") for t in types if t not in denied))

    @staticmethod
    async def language(request: web.Request) -> str:
        session = await get_session(request)
        chosen = session.get(LANGUAGE)
        if isinstance(chosen, str) and chosen in LANGUAGES:
            return chosen
        return language_from_header(request.headers.get("Accept-Language"))

    async def render(self, request: web.Request, template: str, context: Mapping[str, Any] | None = None, *,
                     status: int = 200) -> web.Response:
        session = await get_session(request)
        language = await self.language(request)
        signed_in = isinstance(session.get(PARTICIPANT), str)
        base = {"lang": language, "signed_in": signed_in, "csrf": csrf_token(session) if signed_in else "",
                "next_path": _next_path(request)}
        text = aiohttp_jinja2.render_string(template, request, {**base, **(context or {})},
                                            app_key=_ENV_KEYS[language])
        return web.Response(text=text, status=status, content_type="text/html")

    async def participant(self, request: web.Request) -> tuple[Session, str]:
        """The signed-in participant's session and research id; 401 when nobody is signed in."""
        session = await get_session(request)
        participant = session.get(PARTICIPANT)
        if not isinstance(participant, str) or not participant:
            raise Problem(401, "not_signed_in")
        return session, research_id(self.settings.require_secret_key(), participant)

    # ------------------------------------------------------------------ pages
    async def home(self, request: web.Request) -> web.StreamResponse:
        return await self.render(request, "home.html")

    async def invitation(self, request: web.Request) -> web.StreamResponse:
        try:
            participant = read_invitation(self.settings, request.match_info["token"])
        except InvalidInvitation:
            raise Problem(400, "invalid_invitation") from None
        old = await get_session(request)
        language = old.get(LANGUAGE)
        # a new session for a new sign-in: nothing from before survives (session fixation), but the language
        session = await new_session(request)
        session[PARTICIPANT] = participant
        if isinstance(language, str) and language in LANGUAGES:
            session[LANGUAGE] = language
        csrf_token(session)
        return _redirect("/me")

    async def me(self, request: web.Request) -> web.StreamResponse:
        _, rid = await self.participant(request)
        language = await self.language(request)
        link = await self.vault.get(rid)
        last_sync = await self.vault.last_sync(rid)
        data = await asyncio.to_thread(my_data, self.dataset, rid, today=datetime.now(UTC).date())
        context = self.status_context(link, last_sync, language)
        context.update(self.data_context(data, language))
        return await self.render(request, "me.html", context)

    def status_context(self, link: Link | None, last_sync: float | None, language: str) -> dict[str, Any]:
        linked = link is not None and link.status is LinkStatus.LINKED
        timezone = None if link is None else link.timezone
        change = Provider.GOOGLE_HEALTH
        if link is not None and self.allowed(link.provider):
            change = link.provider
        return {
            "linked": linked,
            "provider_name": None if link is None or not linked else PROVIDER_NAMES.get(link.provider),
            "linked_since": None if link is None or link.linked_at is None
            else format_timestamp(link.linked_at, language, timezone),
            "last_sync": None if last_sync is None else format_timestamp(last_sync, language, timezone),
            "shared": self.kinds(link.provider, link.denied_data_types) if link is not None and linked else (),
            "change_provider": change.value,
            "legacy_notice": link is not None and link.provider is Provider.FITBIT
            and link.status in (LinkStatus.LINKED, LinkStatus.REVOKED),
        }

    @staticmethod
    def data_context(data: MyData, language: str) -> dict[str, Any]:
        gettext = translations(language).gettext
        labels = ChartLabels(
            title=gettext("Your steps and resting heart rate, last 30 days"),
            steps=gettext("Steps"),
            resting_hr=gettext("Resting heart rate"),
            no_data=gettext("No data received in the last 30 days yet."),
            summary=gettext("{days} days with data; on average {mean_steps} steps a day and a resting heart "
                            "rate of {mean_hr} beats per minute."),
            day_label=lambda day: format_skeleton("Md", day, locale=language),
        )
        steps = [p.steps for p in data.days if p.steps is not None]
        heart = [p.resting_hr for p in data.days if p.resting_hr is not None]
        with_data = sum(1 for p in data.days if p.steps is not None or p.resting_hr is not None)
        summary = labels.no_data if not with_data else labels.summary.format(
            days=format_number(with_data, language),
            mean_steps=format_number(round(sum(steps) / len(steps)) if steps else 0, language),
            mean_hr=format_number(round(sum(heart) / len(heart)), language) if heart else "-")
        return {
            "days_received": format_number(data.days_received, language),
            "valid_days_30": format_number(data.valid_days_30, language),
            "devices": [{"name": d.device, "battery": d.battery_level,
                         "last_sync": None if d.last_sync is None else format_wall_clock(d.last_sync, language)}
                        for d in data.devices],
            # the chart module escapes every text it writes into the SVG
            "chart": Markup(chart_svg(data, labels)),  # noqa: S704 - escaped by portal.chart
            "summary": summary,
            "days": [{"day": format_day(p.day, language),
                      "steps": None if p.steps is None else format_number(p.steps, language),
                      "resting_hr": None if p.resting_hr is None else format_number(p.resting_hr, language)}
                     for p in data.days if p.steps is not None or p.resting_hr is not None],
        }

    async def download(self, request: web.Request) -> web.StreamResponse:
        # the research id comes from the session only: no parameter of the URL is ever read here
        _, rid = await self.participant(request)
        body = await asyncio.to_thread(download_zip, self.dataset, rid)
        return web.Response(body=body, content_type="application/zip",
                            headers={"Content-Disposition": 'attachment; filename="my-wearable-data.zip"'})

    async def link_page(self, request: web.Request) -> web.StreamResponse:
        await self.participant(request)
        choices = [_Choice(p.value, PROVIDER_NAMES[p], self.kinds(p))
                   for p in (Provider.GOOGLE_HEALTH, Provider.FITBIT) if self.allowed(p)]
        return await self.render(request, "link.html", {"choices": choices})

    async def link_start(self, request: web.Request) -> web.StreamResponse:
        session, _ = await self.participant(request)
        form = await request.post()
        try:
            provider = Provider(str(form.get("provider", "")))
        except ValueError:
            raise Problem(400, "bad_provider") from None
        if not self.allowed(provider):
            raise Problem(400, "bad_provider")
        if provider is Provider.GOOGLE_HEALTH:
            made = await self.vault.new_links_since(Provider.GOOGLE_HEALTH, time.time() - _DAY_S)
            if made >= self.settings.portal.google_daily_grant_budget:
                LINK_REFUSALS.labels(reason="daily_grant_budget").inc()
                raise Problem(503, "budget")
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        # one pending consent at a time: a second "Connect" replaces the first
        session[OAUTH] = {state: {"verifier": verifier, "provider": provider.value,
                                  "expires": time.time() + _STATE_TTL_S}}
        url = self.clients[provider].authorize_url(state=state, challenge=challenge,
                                                   redirect_uri=self.settings.vendors.redirect_uri)
        return _redirect(url)

    async def link_callback(self, request: web.Request) -> web.StreamResponse:
        session = await get_session(request)
        pending = session.pop(OAUTH, None)  # single use, whatever happens next
        entry = _pending_entry(pending, request.query.get("state", ""))
        await self.participant(request)
        if entry is None:
            raise Problem(400, "link_failed")
        if request.query.get("error") == "access_denied":
            return await self.render(request, "error.html", {"status": 200, "kind": "declined"})
        code, verifier = request.query.get("code", ""), entry.get("verifier")
        provider = Provider(str(entry["provider"]))
        if not code or not isinstance(verifier, str) or not verifier or not self.allowed(provider):
            raise Problem(400, "link_failed")
        participant = str(session[PARTICIPANT])
        try:
            await complete_link(self.settings, self.vault, self.producer, self.clients[provider], participant,
                                code, verifier, clients=self.clients)
        except AccountLinkedElsewhere:  # one vendor account, one research ID (the vault refuses a second)
            raise Problem(409, "linked_elsewhere") from None
        except VendorError as error:  # e.g. a replayed code: the vendor answers invalid_grant
            logger.info("a %s link did not complete (%s)", provider.value, type(error).__name__)
            raise Problem(400, "link_failed") from None
        return _redirect("/me")

    async def unlink(self, request: web.Request) -> web.StreamResponse:
        _, rid = await self.participant(request)
        await unlink(self.settings, self.vault, self.producer, self.clients, rid)
        return _redirect("/me")

    async def leave_page(self, request: web.Request) -> web.StreamResponse:
        await self.participant(request)
        return await self.render(request, "leave.html")

    async def leave(self, request: web.Request) -> web.StreamResponse:
        session, rid = await self.participant(request)
        form = await request.post()
        if form.get("confirm") != "1":
            raise Problem(400, "not_confirmed")
        purge = form.get("purge") == "1"
        dates = await asyncio.to_thread(dates_of, self.dataset, rid) if purge else ()
        await withdraw(self.settings, self.vault, self.producer, self.clients, rid, actor=Actor.PARTICIPANT,
                       purge=purge, dates=dates)
        language = session.get(LANGUAGE)
        session.clear()
        if isinstance(language, str) and language in LANGUAGES:
            session[LANGUAGE] = language
        return _redirect(f"/left?purged={int(purge)}")

    async def left(self, request: web.Request) -> web.StreamResponse:
        return await self.render(request, "left.html", {"purged": request.query.get("purged") == "1"})

    async def switch_language(self, request: web.Request) -> web.StreamResponse:
        code = request.match_info["code"]
        if code not in LANGUAGES:
            raise Problem(404, "not_found")
        wanted = request.query.get("next", "/me")
        if not is_local_path(wanted):  # an open redirect gets nowhere: say so rather than silently go home
            raise Problem(400, "bad_next")
        session = await get_session(request)
        session[LANGUAGE] = code
        return _redirect(safe_next(wanted))


def _pending_entry(pending: object, state: str) -> dict[str, Any] | None:
    """The pending consent ``state`` names, if it is one, still fresh; compared in constant time."""
    if not isinstance(pending, dict) or not state:
        return None
    for known, entry in pending.items():
        if isinstance(known, str) and isinstance(entry, dict) and hmac.compare_digest(known.encode(), state.encode()):
            expires = entry.get("expires")
            if isinstance(expires, int | float) and expires > time.time():
                return entry
    return None


def _next_path(request: web.Request) -> str:
    """Where the language switch comes back to: this path, never a query (it may hold an OAuth
    code), never an invitation (its path is the token), never an unknown path (whatever was typed there)."""
    path = request.path
    if request.match_info.route.name in (None, "invitation", "static") or not is_local_path(path):
        return "/"
    return path


PORTAL = web.AppKey("portal", Portal)


def _route_name(request: web.Request) -> str:
    name = request.match_info.route.name
    return name if name else "not_found"


def _errors_middleware(portal: Portal) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except Problem as problem:
            response = await portal.render(request, "error.html", {"status": problem.status, "kind": problem.kind},
                                           status=problem.status)
        except CsrfRejected:
            response = await portal.render(request, "error.html", {"status": 403, "kind": "csrf"}, status=403)
        except web.HTTPException as error:  # the router's 404 and 405
            kind = "not_found" if error.status == 404 else "other"
            response = await portal.render(request, "error.html", {"status": error.status, "kind": kind},
                                           status=error.status)
        except Exception as error:  # never a stack trace (or an identifier in it) on a participant's screen
            logger.error("a portal page failed: %s", type(error).__name__)
            response = await portal.render(request, "error.html", {"status": 500, "kind": "other"}, status=500)
        PAGES.labels(page=_route_name(request), status=str(response.status)).inc()
        return response
    return middleware


def _headers_middleware(policy: str) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # no Referer ever: the invitation's path is its token, and /link/callback's query holds a code
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"  # personal data: never kept by a browser or proxy
        return response
    return middleware


def build_portal_app(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer,
                     clients: Mapping[Provider, VendorClient], dataset: Dataset) -> web.Application:
    """The portal's routes and middlewares. ``clients``: one per provider, the caller's to close."""
    portal = Portal(settings, vault, producer, clients, dataset)
    storage = session_storage(settings)  # raises ConfigurationError without a session key outside the demo
    app = web.Application(middlewares=[_headers_middleware(content_security_policy(settings, clients)),
                                       session_middleware(storage), _errors_middleware(portal), csrf_middleware])
    app[PORTAL] = portal
    loader = jinja2.FileSystemLoader(TEMPLATE_DIR)
    for language, key in _ENV_KEYS.items():
        app[key] = environment(language, loader)
    app.router.add_get("/", portal.home, name="home")
    app.router.add_get("/i/{token}", portal.invitation, name="invitation")
    app.router.add_get("/me", portal.me, name="me")
    app.router.add_get("/me/download", portal.download, name="download")
    app.router.add_get("/link", portal.link_page, name="link")
    app.router.add_post("/link", portal.link_start, name="link_start")
    app.router.add_get("/link/callback", portal.link_callback, name="link_callback")
    app.router.add_post("/unlink", portal.unlink, name="unlink")
    app.router.add_get("/leave", portal.leave_page, name="leave")
    app.router.add_post("/leave", portal.leave, name="leave_confirm")
    app.router.add_get("/left", portal.left, name="left")
    app.router.add_get("/lang/{code}", portal.switch_language, name="language")
    app.router.add_static("/static/", TEMPLATE_DIR.parent / "static", name="static")
    return app

