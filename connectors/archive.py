"""Fitbit raw JSON archives on disk, laid out as cohorts hold them → RawPages.

    FITBIT/<resource>/<participant>/<file>.json
    e.g. FITBIT/activities-heart-intraday/P1234567890/activities_heart_date_2021-11-10_1d_1sec.json
         FITBIT/profile/P1234567890/profile.json      (optional: the UTC offset and time zone)

The folder may sit anywhere below the given path (e.g. ``raw/health/2021/11/18/FITBIT/...``).
Files are read verbatim; whether their JSON is usable is decided by the normalize agent, so
nothing is dropped here except files whose place in the layout cannot be understood or that
are unsafe to read, and those are reported with the reason (``Skipped``), never aborting the scan:

- a symlink is never followed, to a file or a folder, pointing out of the archive or inside it
  (an archive is data handed to us: a link could carry ``/proc/self/environ`` onto ``raw.fitbit``);
- FIFOs, sockets and devices are refused, and so is a path that resolves outside the archive;
- a name that is not valid UTF-8, a date that is no calendar date (``2021-13-45``), and a file
  larger than ``MAX_FILE_BYTES`` are skipped.

``ArchiveFile.read_bytes`` opens with ``O_NOFOLLOW`` and checks, on the open file, that it is
the regular file the scan saw and within the size cap: a file swapped for a link after the scan
is refused too (``UnreadableFile``).

Each page carries the date of its file name (``RawPage.date``), never one from its body:
archives hold pages whose ``dateTime`` is the relative ``"today"`` of the day they were fetched.
Fitbit times are local wall-clock times, so a participant's pages need a time zone: their
profile's, else the cohort's default (``ScanResult.profile_of``); ``without_profile`` lists who
would need the default.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson

from models.errors import WearablesError
from models.providers import Provider
from models.raw import RawPage

__all__ = ["MAX_FILE_BYTES", "PROFILE_PATH", "ArchiveFile", "Profile", "ScanResult", "Skipped", "UnreadableFile",
           "scan_archive"]

#: The largest archive file read (a day of 1-second heart rate is a few MiB); larger ones are skipped.
MAX_FILE_BYTES = 64 * 1024 * 1024

_RESOURCES = {  # archive folder → RawPage data_type
    "activities-heart-intraday": "activities-heart-intraday",
    "activities-steps-intraday": "activities-steps-intraday",
    "activities": "activities-summary",
    "activities-summary": "activities-summary",
    "sleep": "sleep",
    "devices": "devices",
}
_UNDATED = {"devices"}
# ASCII digits only, and \Z: ``$`` would accept a trailing newline, ``\d`` Arabic-Indic digits
_PARTICIPANT = re.compile(r"\AP[0-9]{10}\Z")
_DATE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})")
_RESOURCE_NAME = re.compile(r"\A[a-z][a-z0-9-]{0,39}\Z")
_DETAIL = re.compile(r"_(1sec|1min|5min|15min)(?:\.|_)")
#: where a participant's time zone comes from, as messages name it (never with a real id)
PROFILE_PATH = "FITBIT/profile/<id>/profile.json"
# Skip reasons: a closed vocabulary (the importer counts files by them), never naming a file.
_SYMLINK = "a symlink (never followed)"
_SPECIAL = "not a regular file (FIFO, socket or device)"
_OUTSIDE = "resolves outside the archive"
_TOO_LARGE = f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"
_NOT_UTF8 = "name is not valid UTF-8"
_UNREADABLE = "cannot be read"


class UnreadableFile(WearablesError):
    """An archive file that cannot be read safely; ``reason`` is one of the scan's skip reasons."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    identity: tuple[int, int] | None = None  # (st_dev, st_ino) as scanned: read_bytes refuses another file

    def read_bytes(self, *, limit: int = MAX_FILE_BYTES) -> bytes:
        """The file's bytes, opened without following a symlink; UnreadableFile when unsafe or too large."""
        return _read_regular(self.path, limit=limit, identity=self.identity)

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


def scan_archive(root: Path, *, max_bytes: int = MAX_FILE_BYTES) -> ScanResult:
    """Every file below ``root``: data files to publish, profiles, and skips with reasons.

    Symlinks below ``root`` are never followed (``root`` itself may be one: the operator named it).
    """
    result = ScanResult(files=[], skipped=[], profiles={})
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    real_root = root.resolve()
    for path, info in sorted(_walk(root, result.skipped), key=lambda found: found[0]):
        reason = _unsafe(path, info, root=root, real_root=real_root, max_bytes=max_bytes)
        if reason is not None:
            result.skipped.append(Skipped(path, reason))
            continue
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
            profile = _read_profile(path, identity=(info.st_dev, info.st_ino), max_bytes=max_bytes)
            if profile is None:
                result.skipped.append(Skipped(path, "profile is not JSON with user.timezone/offsetFromUTCMillis"))
            else:
                result.profiles[participant] = profile
        elif resource not in _RESOURCES:
            # named only when it looks like a resource: a reason is printed, and must not carry an ID
            named = f" {resource!r}" if _RESOURCE_NAME.match(resource) else ""
            result.skipped.append(Skipped(path, f"unknown resource folder{named}"))
        else:
            found = _DATE.search(name)
            if found is None and resource not in _UNDATED:
                result.skipped.append(Skipped(path, "no YYYY-MM-DD date in the file name"))
                continue
            if found is not None and not _is_date(found.group(1)):
                result.skipped.append(Skipped(path, "the date in the file name is no calendar date"))
                continue
            detail = _DETAIL.search(name)
            result.files.append(ArchiveFile(
                path=path, relative="/".join(below), participant_id=participant, data_type=_RESOURCES[resource],
                date=found.group(1) if found else None, detail=detail.group(1) if detail else None,
                identity=(info.st_dev, info.st_ino),
            ))
    result.skipped.sort(key=lambda skipped: skipped.path)
    return result


def _walk(root: Path, skipped: list[Skipped]) -> list[tuple[Path, os.stat_result]]:
    """The regular files below ``root`` with their ``lstat``; links, special files and unreadable
    folders go to ``skipped``. Nothing is followed: each entry is looked at with ``lstat``."""
    if not root.is_dir():  # one file given
        return _regular(root, root.lstat(), skipped)
    found: list[tuple[Path, os.stat_result]] = []
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as entries:
                listed = [(Path(entry.path), entry.stat(follow_symlinks=False)) for entry in entries]
        except OSError:
            skipped.append(Skipped(folder, "folder " + _UNREADABLE))
            continue
        for path, info in listed:
            if stat.S_ISDIR(info.st_mode):
                folders.append(path)
            else:
                found += _regular(path, info, skipped)
    return found


def _regular(path: Path, info: os.stat_result, skipped: list[Skipped]) -> list[tuple[Path, os.stat_result]]:
    if stat.S_ISLNK(info.st_mode):
        skipped.append(Skipped(path, _SYMLINK))
    elif not stat.S_ISREG(info.st_mode):
        skipped.append(Skipped(path, _SPECIAL))
    else:
        return [(path, info)]
    return []


def _unsafe(path: Path, info: os.stat_result, *, root: Path, real_root: Path, max_bytes: int) -> str | None:
    """Why a regular file of the walk is not looked at further, or None."""
    try:
        # os.scandir hands undecodable bytes over as lone surrogates (surrogateescape)
        str(path.relative_to(root)).encode("utf-8")
    except UnicodeEncodeError:
        return _NOT_UTF8
    if info.st_size > max_bytes:
        return _TOO_LARGE
    try:
        inside = path.resolve(strict=True).is_relative_to(real_root)
    except (OSError, RuntimeError):  # vanished, or a link loop appeared since the walk
        return _UNREADABLE
    return None if inside else _OUTSIDE


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _read_regular(path: Path, *, limit: int, identity: tuple[int, int] | None) -> bytes:
    """``path``'s bytes, opened with O_NOFOLLOW (and O_NONBLOCK, so that a FIFO cannot block the open)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise UnreadableFile(_SYMLINK if error.errno == errno.ELOOP else _UNREADABLE) from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(_SPECIAL)
        if identity is not None and (info.st_dev, info.st_ino) != identity:
            raise UnreadableFile(_OUTSIDE)  # not the file the scan saw: a folder above it was swapped
        if info.st_size > limit:
            raise UnreadableFile(_TOO_LARGE)
        try:
            body = file.read(limit + 1)
        except OSError:
            raise UnreadableFile(_UNREADABLE) from None
    if len(body) > limit:  # it grew since the fstat
        raise UnreadableFile(_TOO_LARGE)
    return body


def _read_profile(path: Path, *, identity: tuple[int, int], max_bytes: int) -> Profile | None:
    try:
        data = orjson.loads(_read_regular(path, limit=max_bytes, identity=identity))
    except (UnreadableFile, orjson.JSONDecodeError):
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
