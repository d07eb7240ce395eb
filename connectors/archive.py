"""Fitbit raw JSON archives on disk, laid out as cohorts hold them → RawPages.

    FITBIT/<resource>/<participant>/<file>.json
    e.g. FITBIT/activities-heart-intraday/P1234567890/activities_heart_date_2021-11-10_1d_1sec.json
         FITBIT/profile/P1234567890/profile.json      (optional: the UTC offset and time zone)

The folder may sit anywhere below the given path (e.g. ``raw/health/2021/11/18/FITBIT/...``).
Files are read verbatim; whether their JSON is usable is decided by the normalize agent, so
nothing is dropped here except files whose place in the layout cannot be understood, and
those are reported with the reason.

Each page carries the date of its file name (``RawPage.date``), never one from its body:
archives hold pages whose ``dateTime`` is the relative ``"today"`` of the day they were fetched.
Fitbit times are local wall-clock times, so a participant's pages need a time zone: their
profile's, else the cohort's default (``ScanResult.profile_of``); ``without_profile`` lists who
would need the default.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from models.providers import Provider
from models.raw import RawPage

__all__ = ["PROFILE_PATH", "ArchiveFile", "Profile", "ScanResult", "Skipped", "scan_archive"]

_RESOURCES = {  # archive folder → RawPage data_type
    "activities-heart-intraday": "activities-heart-intraday",
    "activities-steps-intraday": "activities-steps-intraday",
    "activities": "activities-summary",
    "activities-summary": "activities-summary",
    "sleep": "sleep",
    "devices": "devices",
}
_UNDATED = {"devices"}
_PARTICIPANT = re.compile(r"^P\d{10}$")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")
_DETAIL = re.compile(r"_(1sec|1min|5min|15min)(?:\.|_)")
#: where a participant's time zone comes from, as messages name it (never with a real id)
PROFILE_PATH = "FITBIT/profile/<id>/profile.json"


@dataclass(frozen=True, slots=True)
class Profile:
    """A participant's time zone: the IANA name and/or the fixed UTC offset of their profile."""

    timezone: str | None
    utc_offset_ms: int | None

    @property
    def label(self) -> str:
        """The zone as one string (the import ledger keeps it beside each published file)."""
        return self.timezone or f"UTC{self.utc_offset_ms or 0:+d}ms"


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One data file of the archive and what its place in the layout says about it."""

    path: Path
    relative: str  # from the FITBIT folder, e.g. "sleep/P1234567890/sleep_date_2021-11-10.json"
    participant_id: str
    data_type: str
    date: str | None
    detail: str | None

    def page(self, body: bytes, profile: Profile | None, *, fetched_at: float) -> RawPage:
        return RawPage(
            provider=Provider.FITBIT, data_type=self.data_type, date=self.date, body=body, detail=self.detail,
            timezone=profile.timezone if profile else None,
            utc_offset_ms=profile.utc_offset_ms if profile else None,
            fetched_at=fetched_at, request_id="archive:" + hashlib.sha256(self.relative.encode()).hexdigest()[:16],
            origin="archive",
        )


@dataclass(frozen=True, slots=True)
class Skipped:
    path: Path
    reason: str


@dataclass(slots=True)
class ScanResult:
    files: list[ArchiveFile]
    skipped: list[Skipped]
    profiles: dict[str, Profile]

    def without_profile(self) -> set[str]:
        """Participants with data files but no usable profile (every Fitbit page needs a zone)."""
        return {f.participant_id for f in self.files} - set(self.profiles)

    def profile_of(self, participant_id: str, default_timezone: str | None) -> Profile | None:
        """The participant's own profile, else ``default_timezone`` standing in for it, else None."""
        own = self.profiles.get(participant_id)
        if own is not None or default_timezone is None:
            return own
        return Profile(timezone=default_timezone, utc_offset_ms=None)


def scan_archive(root: Path) -> ScanResult:
    """Every file below ``root``: data files to publish, profiles, and skips with reasons."""
    result = ScanResult(files=[], skipped=[], profiles={})
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    for path in sorted(_walk(root)):
        parts = path.parts
        if "FITBIT" not in parts:
            result.skipped.append(Skipped(path, "not below a FITBIT/<resource>/<participant>/ folder"))
            continue
        base = len(parts) - 1 - parts[::-1].index("FITBIT")
        below = parts[base + 1:]
        if len(below) != 3:
            result.skipped.append(Skipped(path, "expected FITBIT/<resource>/<participant>/<file>"))
            continue
        resource, participant, name = below
        if not _PARTICIPANT.match(participant):
            result.skipped.append(Skipped(path, "participant folder is not P followed by 10 digits"))
        elif not name.endswith(".json"):
            result.skipped.append(Skipped(path, "not a .json file"))
        elif resource == "profile":
            profile = _read_profile(path)
            if profile is None:
                result.skipped.append(Skipped(path, "profile is not JSON with user.timezone/offsetFromUTCMillis"))
            else:
                result.profiles[participant] = profile
        elif resource not in _RESOURCES:
            result.skipped.append(Skipped(path, f"unknown resource folder {resource!r}"))
        else:
            found = _DATE.search(name)
            if found is None and resource not in _UNDATED:
                result.skipped.append(Skipped(path, "no YYYY-MM-DD date in the file name"))
                continue
            detail = _DETAIL.search(name)
            result.files.append(ArchiveFile(
                path=path, relative="/".join(below), participant_id=participant, data_type=_RESOURCES[resource],
                date=found.group(1) if found else None, detail=detail.group(1) if detail else None,
            ))
    return result


def _walk(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    yield from (p for p in root.rglob("*") if p.is_file())


def _read_profile(path: Path) -> Profile | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    user = data.get("user") if isinstance(data, dict) else None
    if not isinstance(user, dict):
        return None
    timezone = user.get("timezone") if isinstance(user.get("timezone"), str) else None
    offset = user.get("offsetFromUTCMillis")
    offset = int(offset) if isinstance(offset, int | float) and not isinstance(offset, bool) else None
    if timezone is None and offset is None:
        return None
    return Profile(timezone=timezone, utc_offset_ms=offset)
