"""The simulated Google Health API v4's data calls: identity, a filtered list of steps, heart
rate or sleep data points (page tokens), subscriptions. Paths, filter fields and the page-size
cap from ``google_health_spec``; the filter is parsed here, with the simulator's own reading of
the grammar, and the bodies come from ``pages.py``."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any, TypeVar

import orjson
from aiohttp import web

from connectors.simulator.data_calls import data_call, subscribe
from connectors.simulator.keys import WORLD
from connectors.simulator.pages import google_page, google_points, google_sleep
from connectors.simulator.world import Grant
from connectors.vendors import google_health_spec as spec
from models.providers import Provider

__all__ = ["routes"]

_P = Provider.GOOGLE_HEALTH
_FILTER_BOUND = re.compile(r'(>=|<)\s*"([^"]+)"')
_SAMPLED = ("steps", "heart-rate")  # the types ``pages.google_page`` renders (sleep has its own)
_Point = TypeVar("_Point")  # a sample tuple or a sleep session


def routes() -> list[web.RouteDef]:
    return [
        web.get(spec.IDENTITY_PATH, data_call(_P, _identity)),
        web.get(spec.DATA_POINTS_PATH.replace("{data_type}", f"{{data_type:{'|'.join(_SAMPLED)}}}"),
                data_call(_P, _list)),
        web.get(spec.DATA_POINTS_PATH.format(data_type="sleep"), data_call(_P, _sleep_list)),
        web.post(spec.SUBSCRIPTIONS_PATH, data_call(_P, subscribe)),
    ]


async def _identity(request: web.Request, grant: Grant) -> web.StreamResponse:
    account = grant.account
    return web.json_response({"name": f"users/{account.user_id}/identity", "healthUserId": account.user_id,
                              "legacyUserId": account.legacy_user_id})


async def _list(request: web.Request, grant: Grant) -> web.StreamResponse:
    data_type = request.match_info["data_type"]
    filter_ = request.query.get("filter", "")
    bounds = dict(_FILTER_BOUND.findall(filter_))
    try:
        if spec.FILTER_FIELDS[data_type] not in filter_:
            raise ValueError(f"{data_type} filters on {spec.FILTER_FIELDS[data_type]}")
        start = datetime.fromisoformat(bounds[">="].replace("Z", "+00:00")).timestamp()
        end = datetime.fromisoformat(bounds["<"].replace("Z", "+00:00")).timestamp()
        size, offset = _paging(request)
    except (KeyError, ValueError):
        return _invalid_argument(f'filter needs a time range: {spec.FILTER_FIELDS[data_type]} >= "…Z" AND < "…Z"')
    points = google_points(request.app[WORLD], grant.account, data_type, start, end)
    chunk, token = _cut(points, size, offset)
    request.app[WORLD].stats["samples_served"] += len(chunk)
    return web.Response(body=google_page(data_type, chunk, token), content_type="application/json")


async def _sleep_list(request: web.Request, grant: Grant) -> web.StreamResponse:
    """Sleep is filtered by civil (local) end time, the one sleep filter the API takes."""
    filter_ = request.query.get("filter", "")
    bounds = dict(_FILTER_BOUND.findall(filter_))
    try:
        if spec.FILTER_FIELDS["sleep"] not in filter_:
            raise ValueError(f"sleep filters on {spec.FILTER_FIELDS['sleep']}")
        first, end = (datetime.fromisoformat(bounds[op]).date() for op in (">=", "<"))
        size, offset = _paging(request)
    except (KeyError, ValueError):
        return _invalid_argument(f'filter needs {spec.FILTER_FIELDS["sleep"]} >= "…" AND < "…"')
    points = google_sleep(request.app[WORLD], grant.account, first, end)
    chunk, token = _cut(points, size, offset)
    request.app[WORLD].stats["samples_served"] += sum(len(p["sleep"]["stages"]) for p in chunk)
    body: dict[str, Any] = {"dataPoints": chunk}
    if token:
        body["nextPageToken"] = token
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _paging(request: web.Request) -> tuple[int, int]:
    """(page size, offset) from ``page_size`` and our opaque ``page_token``; ValueError if broken."""
    size = min(int(request.query.get("page_size", "1000")), spec.MAX_PAGE_SIZE)
    token = request.query.get("page_token")
    return size, int(base64.urlsafe_b64decode(token).decode()) if token else 0


def _cut(points: list[_Point], size: int, offset: int) -> tuple[list[_Point], str | None]:
    """One page of ``points``, and the ``page_token`` of the next when more follow."""
    end = offset + size
    return points[offset:end], base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(points) else None


def _invalid_argument(message: str) -> web.Response:
    return web.json_response({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": message}}, status=400)
