"""The simulated vendors' OAuth 2.0: consent page (PKCE S256 required), code exchange,
single-use refresh tokens, revoke; one set of routes per vendor, its differences in its dialect.

The consent page lists what is asked in plain words, one line per scope with the data types it
covers, each a ticked checkbox (``scope``) the participant may untick, as both vendors' pages
let them (https://developers.google.com/health/scopes: "The access token issued will only contain
the scopes the consenting user has authorized"). The code remembers the scopes left ticked; the
token response's ``scope``, and every refresh after it, grants exactly those. A form may also
carry them as one space-separated ``scope`` value, as the authorize URL does (``give_consent``
posts the URL's fields back); nothing ticked is a refusal, like Deny.
"""

from __future__ import annotations

import base64
import html
import time
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from connectors.oauth import pkce_challenge
from connectors.simulator.dialects import DIALECTS, VendorDialect
from connectors.simulator.keys import CLIENTS, WORLD, Handler
from connectors.simulator.world import World
from connectors.vendors.endpoints import Credentials

__all__ = ["routes"]


class _Consents:
    """The scopes each issued code was consented with, until its exchange (codes live 10 minutes)."""

    def __init__(self) -> None:
        self._scopes: dict[str, str] = {}

    def remember(self, world: World, code: str, scope: str) -> None:
        for stale in [c for c in self._scopes if c not in world.codes]:  # expired or never exchanged
            del self._scopes[stale]
        self._scopes[code] = scope

    def take(self, code: str, default: str) -> str:
        return self._scopes.pop(code, default)


def routes() -> list[web.RouteDef]:
    """Every vendor's consent page, token and revoke endpoints, at the paths its dialect gives."""
    consents = _Consents()
    return [route for dialect in DIALECTS.values() for route in (
        web.get(dialect.authorize_path, _consent_page(dialect)),
        web.post(dialect.authorize_path, _consent(dialect, consents)),
        web.post(dialect.token_path, _token(dialect, consents)),
        web.post(dialect.revoke_path, _revoke()),
    )]


def _consent_page(dialect: VendorDialect) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        query = request.query
        problem = _authorize_problem(request, dialect, query)
        if problem:
            return web.Response(status=400, text=problem)
        scopes = dialect.grantable(query.getall("scope", []))
        if not scopes:
            return web.Response(status=400, text=f"invalid_scope: ask for some of {dialect.scope}")
        fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in query.items() if k != "scope")
        asked = "".join(f'<li><label><input type="checkbox" name="scope" value="{html.escape(scope)}" checked> '
                        f"{html.escape(dialect.consent_line(scope))}</label></li>" for scope in scopes)
        vendor = html.escape(dialect.name)
        # an accessible page, as the vendors' own are: a language, a viewport for phones, one main
        # landmark, every field labelled, nothing wider than a 360 px screen (a long client id wraps)
        page = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{vendor}: allow access?</title>"
                "<style>body{font-family:system-ui,sans-serif;line-height:1.5;margin:0 auto;max-width:40rem;"
                "padding:0 1rem;color:#1a1a1a;background:#fff;overflow-wrap:anywhere}"
                "ul{list-style:none;padding:0}li label{display:flex;align-items:center;gap:.6rem;min-height:44px}"
                "input[type=checkbox]{width:24px;height:24px;flex:none}.who{display:block}"
                "input[name=participant]{font:inherit;padding:.4rem;max-width:100%}"
                "button{font:inherit;min-height:44px;min-width:44px;margin:.5rem .5rem 0 0}</style>"
                f"</head><body><main><h1>{vendor} (simulated)</h1>"
                f"<form method=post>{fields}<p>The research study <b>{html.escape(query['client_id'])}</b> "
                f"asks to read (untick what you do not want to share):</p><ul>{asked}</ul>"
                '<p><label class="who" for="participant">Signed in as participant</label> '
                '<input id="participant" name="participant" autocomplete="off" required></p>'
                '<button type="submit" name="decision" value="allow">Allow</button> '
                '<button type="submit" name="decision" value="deny">Deny</button></form></main></body></html>')
        return web.Response(text=page, content_type="text/html")
    return handler


def _authorize_problem(request: web.Request, dialect: VendorDialect, query: Any) -> str | None:
    clients: dict[Any, Credentials] = request.app[CLIENTS]
    if query.get("client_id") != clients[dialect.provider].client_id:
        return "unknown client_id"
    if query.get("response_type") != "code" or not query.get("redirect_uri"):
        return "response_type=code and redirect_uri are required"
    if query.get("code_challenge_method") != "S256" or len(query.get("code_challenge", "")) < 43:
        return "PKCE is required: code_challenge with code_challenge_method=S256"
    return dialect.authorize_problem(query)


def _consent(dialect: VendorDialect, consents: _Consents) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        problem = _authorize_problem(request, dialect, form)
        if problem:
            return web.Response(status=400, text=problem)
        redirect, state = str(form["redirect_uri"]), str(form.get("state", ""))
        granted = dialect.grantable(form.getall("scope", []))
        if form.get("decision") != "allow" or not form.get("participant") or not granted:
            raise web.HTTPFound(f"{redirect}?{urlencode({'error': 'access_denied', 'state': state})}")
        world = request.app[WORLD]
        account = world.account(dialect.provider, str(form["participant"]))
        code = world.issue_code(account, str(form["client_id"]), redirect, str(form["code_challenge"]))
        consents.remember(world, code, " ".join(granted))
        world.stats["consents"] += 1
        if len(granted) < len(dialect.scope.split()):
            world.stats["partial_consents"] += 1
        raise web.HTTPFound(f"{redirect}?{urlencode({'code': code, 'state': state})}")
    return handler


def _client_of(request: web.Request, form: Any) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        return client_id, secret
    return str(form.get("client_id", "")), str(form.get("client_secret", ""))


def _oauth_error(dialect: VendorDialect, error: str, status: int = 400) -> web.Response:
    return web.json_response(dialect.oauth_error(error), status=status, dumps=lambda o: orjson.dumps(o).decode())


def _token(dialect: VendorDialect, consents: _Consents) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        world: World = request.app[WORLD]
        expected: Credentials = request.app[CLIENTS][dialect.provider]
        if _client_of(request, form) != (expected.client_id, expected.client_secret):
            return _oauth_error(dialect, "invalid_client", 401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            issued = world.codes.pop(str(form.get("code", "")), None)
            if issued is None or issued[4] < time.time() or issued[2] != form.get("redirect_uri"):
                return _oauth_error(dialect, "invalid_grant")
            scope = consents.take(str(form.get("code", "")), dialect.scope)  # a code is spent either way
            if pkce_challenge(str(form.get("code_verifier", ""))) != issued[3]:
                return _oauth_error(dialect, "invalid_grant")  # PKCE: the verifier does not match
            account = issued[0]
        elif grant_type == "refresh_token":
            grant = world.use_refresh(str(form.get("refresh_token", "")))
            if grant is None or grant.account.revoked:
                world.stats["refresh_rejected"] += 1
                return _oauth_error(dialect, "invalid_grant")
            account, scope = grant.account, grant.scope  # a refresh grants what the consent did
            world.stats["refreshes"] += 1
        else:
            return _oauth_error(dialect, "unsupported_grant_type")
        access, refresh, lifetime = world.issue_tokens(account, scope)
        body: dict[str, Any] = {"access_token": access, "expires_in": lifetime, "refresh_token": refresh,
                                "scope": scope, "token_type": "Bearer", **dialect.token_extras(account)}
        return web.json_response(body)
    return handler


def _revoke() -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        world: World = request.app[WORLD]
        token = str(form.get("token", ""))
        grant = world.access.get(token) or world.refresh.get(token)
        if grant is not None:
            world.revoke(grant.account)
            world.stats["revocations"] += 1
        return web.Response(status=200)
    return handler
