"""The simulated Google Health API v4's data calls: identity, filtered lists of steps, heart-rate,
daily resting heart rate and sleep data points (page tokens), the paired devices, subscriptions.

Paths, scopes, page sizes and the filter grammar's facts come from ``google_health_spec``; the
filter is parsed here with the simulator's own reading of that grammar (docs/vendors.md, "Filter
grammar"): ``member >= "literal" AND member < "literal"``, OR only for sleep, each data type's
members by its record kind, each literal checked against its kind. A member the data type does
not have is a 400 ``INVALID_DATA_POINT_FILTER_DATA_TYPE_MEMBER``, as the real API answers.

What the docs and users report of the real lists, served on purpose ("Page tokens"): points come
newest first (by interval start time, descending); ``page_size`` defaults to 1440 and is cut to
10,000 (sleep: 25 and 25); a page holds about 5,000 points at most whatever it asked for; and a
seeded share of first pages comes back empty with a ``nextPageToken``. Bodies from ``pages.py``
and ``devices.py``.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import re
import time
import zoneinfo
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import orjson
from aiohttp import web

from connectors.simulator.data_calls import data_call, subscribe
from connectors.simulator.devices import google_paired_devices
from connectors.simulator.keys import WORLD
from connectors.simulator.pages import google_page, google_points, google_resting, google_sleep_sessions
from connectors.simulator.world import Account, Grant, World
from connectors.vendors import google_health_spec as spec
from models.providers import Provider

__all__ = ["routes"]

_P = Provider.GOOGLE_HEALTH
_PRACTICAL_PAGE = 5000  # "Google caps responses at ~5000 points per page" (docs/vendors.md, "Page tokens")
_EMPTY_FIRST_SHARE = 0.1  # first pages answered empty, with a token to the real first page
_WIDEST_OFFSET_S = 18 * 3600  # a civil time is within this of its instant
_Point = TypeVar("_Point")

_COMPARISON = re.compile(r'([A-Za-z_][\w.]*)\s*(>=|<=|!=|=|>|<)\s*"([^"]*)"')
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
_CIVIL = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

#: One conjunction of a filter: member → [lower, upper) in the member's own units (epoch seconds,
#: zone-less wall-clock seconds, or a date's ordinal); None: unbounded on that side.
Bounds = dict[str, tuple[float | None, float | None]]


def _data_type_scope(request: web.Request) -> Collection[str]:
    return (spec.SCOPE_OF[request.match_info["data_type"]],)


def routes() -> list[web.RouteDef]:
    listed = "|".join(spec.DATA_TYPES)
    return [
        web.get(spec.IDENTITY_PATH, data_call(_P, _identity, lambda _: spec.SCOPES)),  # any read scope will do
        web.get(spec.DATA_POINTS_PATH.replace("{data_type}", f"{{data_type:{listed}}}"),
                data_call(_P, _list, _data_type_scope)),
        web.get(spec.PAIRED_DEVICES_PATH, data_call(_P, _paired_devices, lambda _: (spec.SETTINGS_SCOPE,))),
        web.get(spec.SETTINGS_PATH, data_call(_P, _settings, lambda _: (spec.SETTINGS_SCOPE,))),
        web.post(spec.SUBSCRIPTIONS_PATH, data_call(_P, subscribe)),
    ]


async def _settings(request: web.Request, grant: Grant) -> web.StreamResponse:
    """``users.getSettings``: the account's IANA zone and its current offset (a Duration)."""
    zone = zoneinfo.ZoneInfo(grant.account.timezone)
    offset = int(datetime.now(zone).utcoffset().total_seconds())  # type: ignore[union-attr]  # a ZoneInfo always has one
    return web.json_response({"name": "users/me/settings", "timeZone": grant.account.timezone,
                              "utcOffset": f"{offset}s", "distanceUnit": "KILOMETERS"})


async def _identity(request: web.Request, grant: Grant) -> web.StreamResponse:
    account = grant.account
    return web.json_response({"name": f"users/{account.user_id}/identity", "healthUserId": account.user_id,
                              "legacyUserId": account.legacy_user_id})


class _Invalid(ValueError):
    """A request the API refuses with 400 INVALID_ARGUMENT (``reason``: the ErrorInfo reason, if any)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(f"{reason}: {message}" if reason else message)
        self.reason = reason


# --------------------------------------------------------------------------- the filter
def _parse_filter(data_type: str, text: str) -> list[Bounds]:
    """The filter as the disjunction of its conjunctions (an empty filter: one, unbounded)."""
    members = spec.FILTER_MEMBERS[spec.RECORD_KINDS[data_type]]
    if text.count("(") != text.count(")"):
        raise _Invalid("unbalanced parentheses in filter")
    disjuncts = re.split(r"\s+OR\s+", text.strip()) if text.strip() else []
    if len(disjuncts) > 1 and spec.RECORD_KINDS[data_type] not in spec.OR_KINDS:
        raise _Invalid(f"OR is not supported in {data_type} filters")
    return [_conjunction(data_type, members, d) for d in disjuncts] or [{}]


def _conjunction(data_type: str, members: dict[str, str], text: str) -> Bounds:
    prefix, bounds = spec.filter_name(data_type) + ".", Bounds()
    for term in re.split(r"\s+AND\s+", text.strip()):
        match = _COMPARISON.fullmatch(term.strip().strip("()").strip())
        if match is None:
            raise _Invalid(f"cannot parse filter term {term.strip()!r}")
        field, operator, literal = match.groups()
        member = field.removeprefix(prefix)
        if not field.startswith(prefix) or member not in members:
            raise _Invalid(f"{field} is not a filter member of {data_type}", spec.FILTER_MEMBER_REASON)
        if operator not in (">=", "<"):
            raise _Invalid(f"operator {operator} is not supported: use >= and <")
        value = _literal(members[member], literal)
        lower, upper = bounds.get(member, (None, None))
        bounds[member] = (value, upper) if operator == ">=" else (lower, value)
    return bounds


def _literal(kind: str, text: str) -> float:
    """A literal in its member's units; _Invalid if it is not of the member's kind."""
    try:
        if kind == spec.INSTANT and _INSTANT.fullmatch(text):
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        if kind == spec.CIVIL and _CIVIL.fullmatch(text):
            return float(calendar.timegm(datetime.fromisoformat(text).timetuple()))
        if kind == spec.DATE and _DATE.fullmatch(text):
            return float(date.fromisoformat(text).toordinal())
    except ValueError:
        pass
    wanted = {spec.INSTANT: "an RFC 3339 time", spec.CIVIL: "YYYY-MM-DD[THH:mm:ss]", spec.DATE: "YYYY-MM-DD"}[kind]
    raise _Invalid(f"{text!r} is not {wanted}")


def _matches(disjunction: list[Bounds], keys: dict[str, float]) -> bool:
    return any(all((low is None or keys[m] >= low) and (high is None or keys[m] < high)
                   for m, (low, high) in bounds.items()) for bounds in disjunction)


# --------------------------------------------------------------------------- what a filter selects
def _sampled(world: World, account: Account, data_type: str, disjunction: list[Bounds]
             ) -> list[tuple[int, int, int]]:
    """The steps / heart-rate samples the filter selects, newest first."""
    members = spec.FILTER_MEMBERS[spec.RECORD_KINDS[data_type]]
    first = datetime.combine(world.first_day - timedelta(days=1), datetime.min.time(), UTC).timestamp()
    start, end = float("inf"), float("-inf")
    for bounds in disjunction:  # the instants the filter can reach: civil times lie within a day of them
        low, high = first, world.data_end
        for member, (lower, upper) in bounds.items():
            pad = 0 if members[member] == spec.INSTANT else _WIDEST_OFFSET_S
            low = max(low, lower - pad) if lower is not None else low
            high = min(high, upper + pad) if upper is not None else high
        start, end = min(start, low), max(end, high)
    points = google_points(world, account, data_type, start, end) if start < end else []
    exact = len(disjunction) == 1 and all(members[m] == spec.INSTANT for m in disjunction[0])
    if not exact:  # a civil bound, or several ranges: look at each sample (its wall clock: time + offset)
        instant = next(m for m, kind in members.items() if kind == spec.INSTANT)
        civil = next(m for m, kind in members.items() if kind == spec.CIVIL)
        points = [p for p in points if _matches(disjunction, {instant: p[0], civil: p[0] + p[2]})]
    points.reverse()
    return points


def _daily(world: World, account: Account, disjunction: list[Bounds]) -> list[dict[str, Any]]:
    """The daily resting heart-rate points the filter selects, newest first."""
    chosen = [point for day, point in google_resting(world, account)
              if _matches(disjunction, {"date": float(day.toordinal())})]
    chosen.reverse()
    return chosen


def _sessions(world: World, account: Account, disjunction: list[Bounds]) -> list[dict[str, Any]]:
    """The sleep sessions the filter selects, newest first."""
    chosen = [s for s in google_sleep_sessions(world, account) if _matches(disjunction, {
        "interval.end_time": s.end, "interval.civil_end_time": float(calendar.timegm(s.civil_end.timetuple()))})]
    chosen.sort(key=lambda s: s.start, reverse=True)
    return [s.point for s in chosen]


# --------------------------------------------------------------------------- pages
async def _list(request: web.Request, grant: Grant) -> web.StreamResponse:
    data_type, world, account = request.match_info["data_type"], request.app[WORLD], grant.account
    filter_ = request.query.get("filter", "")
    try:
        disjunction = _parse_filter(data_type, filter_)
        size, offset = _paging(request, data_type)
    except _Invalid as invalid:
        return _invalid_argument(str(invalid), invalid.reason)
    first = not (request.query.get("page_token") or request.query.get("pageToken"))
    if first and _empty_first(world, account, data_type, filter_):
        return web.Response(body=google_page(data_type, [], _token(0)), content_type="application/json")
    kind = spec.RECORD_KINDS[data_type]
    if kind in ("interval", "sample"):
        chunk, token = _cut(_sampled(world, account, data_type, disjunction), size, offset)
        world.stats["samples_served"] += len(chunk)
        return web.Response(body=google_page(data_type, chunk, token), content_type="application/json")
    points = _daily(world, account, disjunction) if kind == "daily" else _sessions(world, account, disjunction)
    chosen, token = _cut(points, size, offset)
    world.stats["samples_served"] += sum(len(p["sleep"]["stages"]) if "sleep" in p else 1 for p in chosen)
    return _json({"dataPoints": chosen}, token)


async def _paired_devices(request: web.Request, grant: Grant) -> web.StreamResponse:
    try:
        size, offset = _paging(request, spec.PAIRED_DEVICES)
    except _Invalid as invalid:
        return _invalid_argument(str(invalid))
    world: World = request.app[WORLD]
    chunk, token = _cut(google_paired_devices(world, grant.account, time.time()), size, offset)
    world.stats["devices_served"] += len(chunk)
    return _json({"pairedDevices": chunk}, token)


def _json(body: dict[str, list[Any]], token: str | None) -> web.Response:
    """A list response as proto3 JSON writes it: an empty list left out, the token only when more follow."""
    shown: dict[str, Any] = {name: items for name, items in body.items() if items}
    if token:
        shown["nextPageToken"] = token
    return web.Response(body=orjson.dumps(shown), content_type="application/json")


def _empty_first(world: World, account: Account, data_type: str, filter_: str) -> bool:
    """Whether this first page comes back empty with a token: for a seeded share of (account,
    data type, filter), always the same ones."""
    digest = hashlib.sha256(f"{world.cohort.seed}|{account.user_id}|{data_type}|{filter_}".encode()).digest()
    return digest[0] < 256 * _EMPTY_FIRST_SHARE


def _paging(request: web.Request, data_type: str) -> tuple[int, int]:
    """(page size, offset) from ``page_size``/``pageSize`` and our opaque ``page_token``/``pageToken``
    (the REST query takes both spellings)."""
    default, most = spec.PAGE_SIZES[data_type]
    query = request.query
    try:
        asked = int(query.get("page_size", query.get("pageSize", "0")))
        token = query.get("page_token", query.get("pageToken"))
        offset = int(base64.urlsafe_b64decode(token).decode()) if token else 0
    except ValueError:
        raise _Invalid("page_size must be a number and page_token one this API gave") from None
    if asked < 0 or offset < 0:
        raise _Invalid("page_size and page_token must not be negative")
    return min(asked or default, most, _PRACTICAL_PAGE), offset


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _cut(points: list[_Point], size: int, offset: int) -> tuple[list[_Point], str | None]:
    """One page of ``points``, and the ``page_token`` of the next when more follow."""
    end = offset + size
    return points[offset:end], _token(end) if end < len(points) else None


def _invalid_argument(message: str, reason: str | None = None) -> web.Response:
    error: dict[str, Any] = {"code": 400, "status": "INVALID_ARGUMENT", "message": message}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                             "domain": "health.googleapis.com"}]
    return web.json_response({"error": error}, status=400)
