"""The vendor simulator's HTTP face: the Fitbit Web API and the Google Health API on one host.

Same paths, JSON shapes, OAuth endpoints (consent page, PKCE, single-use refresh tokens,
revoke), rate-limit headers and 429s as the real services (research/fitbit_allofus.md §2-3).
``/_sim/*`` is the operator's side door: statistics, revoking a participant, forcing syncs.
"""

from __future__ import annotations

import asyncio
import base64
import html
import random
import re
import time
import zoneinfo
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
from aiohttp import web

from connectors.endpoints import Credentials
from connectors.oauth import pkce_challenge
from connectors.simulator.pages import fitbit_day, fitbit_sleep, google_page, google_points, google_sleep
from connectors.simulator.world import Account, Grant, World
from models.providers import Provider
from runtime.metrics import counter

__all__ = ["build_simulator_app"]

REQUESTS = counter("simulator_requests_total", "Vendor API requests the simulator answered", ["provider", "status"])
VIOLATIONS = counter("simulator_rate_limit_violations_total", "Requests over a vendor rate limit (answered 429)",
                     ["provider"])
FAULTS = counter("simulator_faults_total", "Faults the simulator injected", ["reason"])

_WORLD = web.AppKey("world", World)
_CLIENTS = web.AppKey("clients", dict)
_FILTER_BOUND = re.compile(r'(>=|<)\s*"([^"]+)"')
_PAGE_SIZE_MAX = 10_000
_Point = TypeVar("_Point")  # a sample tuple or a sleep session
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_simulator_app(world: World, clients: dict[Provider, Credentials]) -> web.Application:
    app = web.Application()
    app[_WORLD], app[_CLIENTS] = world, clients
    app.add_routes([
        # Fitbit Web API
        web.get("/oauth2/authorize", _consent_page(Provider.FITBIT)),
        web.post("/oauth2/authorize", _consent(Provider.FITBIT)),
        web.post("/oauth2/token", _token(Provider.FITBIT)),
        web.post("/oauth2/revoke", _revoke(Provider.FITBIT)),
        web.get("/1/user/-/profile.json", _data(Provider.FITBIT, _fitbit_profile)),
        web.get(r"/1/user/-/activities/{resource:steps|heart}/date/{day}/1d/{detail}.json",
                _data(Provider.FITBIT, _fitbit_intraday)),
        web.get("/1.2/user/-/sleep/date/{day}.json", _data(Provider.FITBIT, _fitbit_sleep)),
        web.post("/1/user/-/apiSubscriptions/{subscription}.json", _data(Provider.FITBIT, _subscribe)),
        web.post("/1/user/-/{collection}/apiSubscriptions/{subscription}.json",
                 _data(Provider.FITBIT, _subscribe)),
        # Google Health API v4 and Google OAuth
        web.get("/o/oauth2/v2/auth", _consent_page(Provider.GOOGLE_HEALTH)),
        web.post("/o/oauth2/v2/auth", _consent(Provider.GOOGLE_HEALTH)),
        web.post("/token", _token(Provider.GOOGLE_HEALTH)),
        web.post("/revoke", _revoke(Provider.GOOGLE_HEALTH)),
        web.get("/v4/users/me/identity", _data(Provider.GOOGLE_HEALTH, _google_identity)),
        web.get(r"/v4/users/me/dataTypes/{data_type:steps|heart-rate}/dataPoints",
                _data(Provider.GOOGLE_HEALTH, _google_list)),
        web.get("/v4/users/me/dataTypes/sleep/dataPoints", _data(Provider.GOOGLE_HEALTH, _google_sleep_list)),
        web.post("/v4/projects/{project}/subscribers/{subscriber}/subscriptions",
                 _data(Provider.GOOGLE_HEALTH, _subscribe)),
        # the operator's side door
        web.get("/_sim/stats", _stats),
        web.post("/_sim/revoke", _sim_revoke),
    ])
    return app


# --------------------------------------------------------------------------- OAuth
def _consent_page(provider: Provider) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        query = request.query
        problem = _authorize_problem(request, provider, query)
        if problem:
            return web.Response(status=400, text=problem)
        fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in query.items())
        vendor = "Fitbit" if provider is Provider.FITBIT else "Google Health"
        page = (f"<!doctype html><title>{vendor}: allow access?</title><h1>{vendor} (simulated)</h1>"
                f"<p>The research study <b>{html.escape(query['client_id'])}</b> asks to read: "
                f"{html.escape(query.get('scope', ''))}</p><form method=post>{fields}"
                '<label>Signed in as participant <input name="participant" required></label> '
                '<button name="decision" value="allow">Allow</button> '
                '<button name="decision" value="deny">Deny</button></form>')
        return web.Response(text=page, content_type="text/html")
    return handler


def _authorize_problem(request: web.Request, provider: Provider, query: Any) -> str | None:
    clients: dict[Provider, Credentials] = request.app[_CLIENTS]
    if query.get("client_id") != clients[provider].client_id:
        return "unknown client_id"
    if query.get("response_type") != "code" or not query.get("redirect_uri"):
        return "response_type=code and redirect_uri are required"
    if query.get("code_challenge_method") != "S256" or len(query.get("code_challenge", "")) < 43:
        return "PKCE is required: code_challenge with code_challenge_method=S256"
    if provider is Provider.GOOGLE_HEALTH and query.get("access_type") != "offline":
        return "access_type=offline is required for a refresh token"
    return None


def _consent(provider: Provider) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        problem = _authorize_problem(request, provider, form)
        if problem:
            return web.Response(status=400, text=problem)
        redirect, state = str(form["redirect_uri"]), str(form.get("state", ""))
        if form.get("decision") != "allow" or not form.get("participant"):
            raise web.HTTPFound(f"{redirect}?{urlencode({'error': 'access_denied', 'state': state})}")
        world = request.app[_WORLD]
        account = world.account(provider, str(form["participant"]))
        code = world.issue_code(account, str(form["client_id"]), redirect, str(form["code_challenge"]))
        request.app[_WORLD].stats["consents"] += 1
        raise web.HTTPFound(f"{redirect}?{urlencode({'code': code, 'state': state})}")
    return handler


def _client_of(request: web.Request, form: Any) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        return client_id, secret
    return str(form.get("client_id", "")), str(form.get("client_secret", ""))


def _oauth_error(provider: Provider, error: str, status: int = 400) -> web.Response:
    if provider is Provider.FITBIT:
        body = {"errors": [{"errorType": error, "message": error.replace("_", " ")}], "success": False}
    else:
        body = {"error": error, "error_description": error.replace("_", " ")}
    return web.json_response(body, status=status, dumps=lambda o: orjson.dumps(o).decode())


def _token(provider: Provider) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        world: World = request.app[_WORLD]
        expected: Credentials = request.app[_CLIENTS][provider]
        if _client_of(request, form) != (expected.client_id, expected.client_secret):
            return _oauth_error(provider, "invalid_client", 401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            issued = world.codes.pop(str(form.get("code", "")), None)
            if issued is None or issued[4] < time.time() or issued[2] != form.get("redirect_uri"):
                return _oauth_error(provider, "invalid_grant")
            if pkce_challenge(str(form.get("code_verifier", ""))) != issued[3]:
                return _oauth_error(provider, "invalid_grant")  # PKCE: the verifier does not match
            account = issued[0]
        elif grant_type == "refresh_token":
            grant = world.use_refresh(str(form.get("refresh_token", "")))
            if grant is None or grant.account.revoked:
                world.stats["refresh_rejected"] += 1
                return _oauth_error(provider, "invalid_grant")
            account = grant.account
            world.stats["refreshes"] += 1
        else:
            return _oauth_error(provider, "unsupported_grant_type")
        scope = "activity heartrate sleep profile" if provider is Provider.FITBIT else (
            "https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly "
            "https://www.googleapis.com/auth/googlehealth.health_metrics_and_measurements.readonly")
        access, refresh, lifetime = world.issue_tokens(account, scope)
        body: dict[str, Any] = {"access_token": access, "expires_in": lifetime, "refresh_token": refresh,
                                "scope": scope, "token_type": "Bearer"}
        if provider is Provider.FITBIT:
            body["user_id"] = account.user_id
        return web.json_response(body)
    return handler


def _revoke(provider: Provider) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        world: World = request.app[_WORLD]
        token = str(form.get("token", ""))
        grant = world.access.get(token) or world.refresh.get(token)
        if grant is not None:
            world.revoke(grant.account)
            world.stats["revocations"] += 1
        return web.Response(status=200)
    return handler


# --------------------------------------------------------------------------- data calls
def _data(provider: Provider, inner: Callable[[web.Request, Grant], Awaitable[web.StreamResponse]]) -> Handler:
    """Authenticate, count against the rate limits, inject faults, then answer."""
    async def handler(request: web.Request) -> web.StreamResponse:
        world: World = request.app[_WORLD]
        grant, problem = _authenticate(world, provider, request.headers.get("Authorization", ""))
        if grant is None:
            REQUESTS.labels(provider.value, "401").inc()
            return _unauthorized(provider, problem)
        now = time.time()
        allowed, limit, reset, remaining = world.quota.take(provider, grant.account.user_id, now)
        headers = _limit_headers(provider, limit, remaining, reset)
        if not allowed:
            VIOLATIONS.labels(provider.value).inc()
            world.stats[f"violations_{provider.value}"] += 1
            REQUESTS.labels(provider.value, "429").inc()
            headers["Retry-After"] = str(max(1, int(reset + 0.999)))
            return web.json_response(_too_many(provider), status=429, headers=headers)
        response = await _faulty(world, provider)
        if response is None:
            response = await inner(request, grant)
        response.headers.update(headers)
        REQUESTS.labels(provider.value, str(response.status)).inc()
        world.stats[f"requests_{provider.value}"] += 1
        return response
    return handler


def _authenticate(world: World, provider: Provider, header: str) -> tuple[Grant | None, str]:
    grant = world.access.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
    if grant is None or grant.account.provider is not provider or grant.account.revoked:
        return None, "invalid_token"
    if grant.expires_at < time.time():
        return None, "expired_token"
    return grant, ""


def _unauthorized(provider: Provider, problem: str) -> web.Response:
    if provider is Provider.FITBIT:
        body: dict[str, Any] = {"errors": [{"errorType": problem, "message": f"Access token {problem}"}],
                                "success": False}
    else:
        body = {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": problem}}
    return web.json_response(body, status=401)


def _limit_headers(provider: Provider, limit: int, remaining: int, reset: float) -> dict[str, str]:
    if provider is Provider.FITBIT:
        return {"Fitbit-Rate-Limit-Limit": str(limit), "Fitbit-Rate-Limit-Remaining": str(remaining),
                "Fitbit-Rate-Limit-Reset": str(int(reset + 0.999))}
    return {}  # Google answers 429 with Retry-After only


def _too_many(provider: Provider) -> dict[str, Any]:
    if provider is Provider.FITBIT:
        return {"errors": [{"errorType": "system", "message": "Too Many Requests"}], "success": False}
    return {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded"}}


async def _faulty(world: World, provider: Provider) -> web.Response | None:
    faults = world.faults
    if faults.latency_s:
        await asyncio.sleep(faults.latency_s)
    roll = random.random()
    if roll < faults.timeout_rate:
        FAULTS.labels("timeout").inc()
        world.stats["injected_timeouts"] += 1
        await asyncio.sleep(faults.hang_s)
        return web.json_response({"error": "hung"}, status=504)
    if roll < faults.timeout_rate + faults.error_rate:
        FAULTS.labels("server_error").inc()
        world.stats["injected_5xx"] += 1
        return web.json_response({"error": "injected"}, status=random.choice((500, 502, 503)))
    return None


async def _fitbit_profile(request: web.Request, grant: Grant) -> web.StreamResponse:
    account = grant.account
    offset = datetime.now(UTC).astimezone(zoneinfo.ZoneInfo(account.timezone)).utcoffset()
    return web.json_response({"user": {"encodedId": account.user_id, "timezone": account.timezone,
                                       "offsetFromUTCMillis": int(offset.total_seconds() * 1000) if offset else 0}})


def _fitbit_invalid(message: str) -> web.Response:
    return web.json_response({"errors": [{"errorType": "validation", "message": message}]}, status=400)


async def _fitbit_intraday(request: web.Request, grant: Grant) -> web.StreamResponse:
    try:
        day = date.fromisoformat(request.match_info["day"])
    except ValueError:
        return _fitbit_invalid("Invalid date")
    if request.match_info["detail"] not in ("1sec", "1min", "5min", "15min"):
        return _fitbit_invalid("Invalid detail-level")
    world: World = request.app[_WORLD]
    body = fitbit_day(world, grant.account, request.match_info["resource"], day)
    world.stats["samples_served"] += body.count(b'"time"')
    return web.Response(body=body, content_type="application/json")


async def _fitbit_sleep(request: web.Request, grant: Grant) -> web.StreamResponse:
    try:
        day = date.fromisoformat(request.match_info["day"])
    except ValueError:
        return _fitbit_invalid("Invalid date")
    world: World = request.app[_WORLD]
    body = fitbit_sleep(world, grant.account, day)
    world.stats["samples_served"] += body.count(b'"level"')
    return web.Response(body=body, content_type="application/json")


async def _google_identity(request: web.Request, grant: Grant) -> web.StreamResponse:
    account = grant.account
    return web.json_response({"name": f"users/{account.user_id}/identity", "healthUserId": account.user_id,
                              "legacyUserId": account.legacy_user_id})


async def _google_list(request: web.Request, grant: Grant) -> web.StreamResponse:
    bounds = dict(_FILTER_BOUND.findall(request.query.get("filter", "")))
    try:
        start = datetime.fromisoformat(bounds[">="].replace("Z", "+00:00")).timestamp()
        end = datetime.fromisoformat(bounds["<"].replace("Z", "+00:00")).timestamp()
        size, offset = _paging(request)
    except (KeyError, ValueError):
        return _invalid_argument('filter needs a time range: >= "…Z" AND < "…Z"')
    points = google_points(request.app[_WORLD], grant.account, request.match_info["data_type"], start, end)
    chunk, token = _cut(points, size, offset)
    request.app[_WORLD].stats["samples_served"] += len(chunk)
    return web.Response(body=google_page(request.match_info["data_type"], chunk, token),
                        content_type="application/json")


async def _google_sleep_list(request: web.Request, grant: Grant) -> web.StreamResponse:
    """Sleep is filtered by civil (local) end time, the one sleep filter the API takes."""
    filter_ = request.query.get("filter", "")
    bounds = dict(_FILTER_BOUND.findall(filter_))
    try:
        if "sleep.interval.civil_end_time" not in filter_:
            raise ValueError("sleep filters on sleep.interval.civil_end_time")
        first, end = (datetime.fromisoformat(bounds[op]).date() for op in (">=", "<"))
        size, offset = _paging(request)
    except (KeyError, ValueError):
        return _invalid_argument('filter needs sleep.interval.civil_end_time >= "…" AND < "…"')
    points = google_sleep(request.app[_WORLD], grant.account, first, end)
    chunk, token = _cut(points, size, offset)
    request.app[_WORLD].stats["samples_served"] += sum(len(p["sleep"]["stages"]) for p in chunk)
    body: dict[str, Any] = {"dataPoints": chunk}
    if token:
        body["nextPageToken"] = token
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _paging(request: web.Request) -> tuple[int, int]:
    """(page size, offset) from ``page_size`` and our opaque ``page_token``; ValueError if broken."""
    size = min(int(request.query.get("page_size", "1000")), _PAGE_SIZE_MAX)
    token = request.query.get("page_token")
    return size, int(base64.urlsafe_b64decode(token).decode()) if token else 0


def _cut(points: list[_Point], size: int, offset: int) -> tuple[list[_Point], str | None]:
    """One page of ``points``, and the ``page_token`` of the next when more follow."""
    end = offset + size
    return points[offset:end], base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(points) else None


def _invalid_argument(message: str) -> web.Response:
    return web.json_response({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": message}}, status=400)


async def _subscribe(request: web.Request, grant: Grant) -> web.StreamResponse:
    grant.account.subscribed = True
    return web.json_response({"ownerId": grant.account.user_id, "subscriptionId": "sim"}, status=201)


# --------------------------------------------------------------------------- side door
async def _stats(request: web.Request) -> web.StreamResponse:
    world: World = request.app[_WORLD]
    stats = dict(world.stats)
    stats["rate_limit_violations"] = sum(v for k, v in world.stats.items() if k.startswith("violations_"))
    stats["accounts"] = len(world.accounts())
    stats["fully_synced"] = world.fully_synced()
    return web.json_response(stats)


async def _sim_revoke(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    world: World = request.app[_WORLD]
    account: Account = world.account(Provider(body["provider"]), str(body["participant"]))
    world.revoke(account)
    world.stats["revocations"] += 1
    return web.json_response({"revoked": True})
