from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from connectors.archive import MAX_FILE_BYTES, Profile, UnreadableFile, scan_archive
from connectors.simulator.cohort import SyntheticCohort

COHORT = SyntheticCohort(2, seed=3)


def make_archive(root: Path, *, with_profile: bool = True) -> Path:
    """A small cohort archive as All of Us transfer buckets lay it out, plus some strays."""
    base = root / "raw" / "health" / "2021" / "11" / "18" / "FITBIT"
    for n, person in enumerate(COHORT.participant_ids):
        for day in (date(2021, 11, 9), date(2021, 11, 10)):
            steps = base / "activities-steps-intraday" / person / f"activities_steps_date_{day}_1d_1min.json"
            heart = base / "activities-heart-intraday" / person / f"activities_heart_date_{day}_1d_1sec.json"
            for path, body in ((steps, COHORT.fitbit_steps_intraday(person, day)),
                               (heart, COHORT.fitbit_heart_intraday(person, day))):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(body)
        if with_profile and n == 0:
            profile = base / "profile" / person / "profile.json"
            profile.parent.mkdir(parents=True, exist_ok=True)
            profile.write_text('{"user": {"timezone": "America/Chicago", "offsetFromUTCMillis": -21600000}}')
    strays = {
        base / "activities-steps-intraday" / "someone" / "activities_steps_date_2021-11-10_1d_1min.json": "{}",
        base / "weight" / COHORT.participant_ids[0] / "weight_date_2021-11-10.json": "{}",
        base / "sleep" / COHORT.participant_ids[0] / "sleep_latest.json": "{}",
        base / "sleep" / COHORT.participant_ids[0] / "notes.txt": "x",
        root / "README.txt": "cohort export",
    }
    for path, text in strays.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_scan_finds_data_files_profiles_and_reasons(tmp_path: Path) -> None:
    scan = scan_archive(make_archive(tmp_path))
    assert len(scan.files) == 8
    first = next(f for f in scan.files if f.data_type == "activities-heart-intraday")
    assert (first.date, first.detail) == ("2021-11-09", "1sec")
    assert first.relative.startswith("activities-heart-intraday/P")
    assert set(scan.profiles) == {COHORT.participant_ids[0]}
    assert scan.profiles[COHORT.participant_ids[0]].timezone == "America/Chicago"
    assert sorted(s.reason for s in scan.skipped) == sorted([
        "participant folder is not P followed by 10 digits", "unknown resource folder 'weight'",
        "no YYYY-MM-DD date in the file name", "not a .json file",
        "not below a FITBIT/<resource>/<participant>/ folder",
    ])


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan_archive(tmp_path / "nope")


def test_participants_without_a_profile_get_the_default_zone_the_others_their_own(tmp_path: Path) -> None:
    scan = scan_archive(make_archive(tmp_path))
    with_profile, without = COHORT.participant_ids
    assert scan.without_profile() == {without}
    assert scan.profile_of(with_profile, "Europe/Berlin") == Profile("America/Chicago", -21600000)
    assert scan.profile_of(without, "Europe/Berlin") == Profile("Europe/Berlin", None)
    assert scan.profile_of(without, None) is None
    assert scan_archive(make_archive(tmp_path / "none", with_profile=False)).without_profile() == set(
        COHORT.participant_ids)


def test_a_page_has_its_file_names_date_whatever_its_body_says(tmp_path: Path) -> None:
    """Archived pages may say ``"dateTime": "today"`` (the day they were fetched): the file name decides."""
    folder = tmp_path / "FITBIT" / "activities-steps-intraday" / COHORT.participant_ids[0]
    folder.mkdir(parents=True)
    bodies = {
        "activities_steps_date_2021-11-10_1d_1min.json": b'{"activities-steps": [{"dateTime": "today", "value": "7"}]}',
        "activities_steps_date_2021-11-11_1d_1min.json": b'{"activities-steps": [{"dateTime": "2019-01-01"}]}',
    }
    for name, body in bodies.items():
        (folder / name).write_bytes(body)
    devices = tmp_path / "FITBIT" / "devices" / COHORT.participant_ids[0] / "devices.json"
    devices.parent.mkdir(parents=True)
    devices.write_bytes(b"[]")

    scan = scan_archive(tmp_path)
    zone = Profile("America/Chicago", None)
    pages = {f.path.name: f.page(f.path.read_bytes(), zone, fetched_at=1.0) for f in scan.files}
    assert pages["activities_steps_date_2021-11-10_1d_1min.json"].date == "2021-11-10"
    assert pages["activities_steps_date_2021-11-11_1d_1min.json"].date == "2021-11-11"
    assert pages["devices.json"].date is None  # undated resource
    assert {p.body for p in pages.values()} == {*bodies.values(), b"[]"}  # verbatim
    assert {p.timezone for p in pages.values()} == {"America/Chicago"}


# --------------------------------------------------------------------------- unsafe files (audit findings 6, 19)
def _day_file(root: Path, person: str = COHORT.participant_ids[0], *, name: str = "") -> Path:
    folder = root / "FITBIT" / "activities-steps-intraday" / person
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (name or "activities_steps_date_2021-11-10_1d_1min.json")


def test_symlinks_are_skipped_never_followed_out_of_the_archive_or_inside_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "service.env").write_bytes(b"WEARABLES_VAULT_KEY=secret")
    stolen = outside / "P1111111111"  # a whole participant folder outside the archive
    stolen.mkdir()
    (stolen / "activities_steps_date_2021-11-10_1d_1min.json").write_bytes(b"{}")
    root = tmp_path / "archive"
    good = _day_file(root)
    good.write_bytes(b"{}")
    (good.parent / "activities_steps_date_2021-11-11_1d_1min.json").symlink_to(outside / "service.env")
    (good.parent / "activities_steps_date_2021-11-12_1d_1min.json").symlink_to(good)  # inside the archive
    (root / "FITBIT" / "activities-steps-intraday" / "P1111111111").symlink_to(stolen, target_is_directory=True)
    (root / "FITBIT" / "sleep").symlink_to(good.parent.parent, target_is_directory=True)  # a folder inside it

    scan = scan_archive(root)
    assert [f.path for f in scan.files] == [good]
    assert sorted(s.path.name for s in scan.skipped if s.reason == "a symlink (never followed)") == [
        "P1111111111", "activities_steps_date_2021-11-11_1d_1min.json", "activities_steps_date_2021-11-12_1d_1min.json",
        "sleep"]
    assert len(scan.skipped) == 4


def test_a_symlinked_profile_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "profile.json"
    outside.write_text('{"user": {"timezone": "America/Chicago"}}')
    root = tmp_path / "archive"
    _day_file(root).write_bytes(b"{}")
    profile = root / "FITBIT" / "profile" / COHORT.participant_ids[0] / "profile.json"
    profile.parent.mkdir(parents=True)
    profile.symlink_to(outside)
    scan = scan_archive(root)
    assert scan.profiles == {} and [s.reason for s in scan.skipped] == ["a symlink (never followed)"]


def test_special_files_are_refused(tmp_path: Path) -> None:
    fifo = _day_file(tmp_path)
    os.mkfifo(fifo)  # reading it would block the import forever
    scan = scan_archive(tmp_path)
    assert scan.files == [] and [s.reason for s in scan.skipped] == ["not a regular file (FIFO, socket or device)"]


def test_read_bytes_does_not_follow_a_file_swapped_for_a_symlink_after_the_scan(tmp_path: Path) -> None:
    path = _day_file(tmp_path)
    path.write_bytes(b'{"steps": 1}')
    (file,) = scan_archive(tmp_path).files
    assert file.read_bytes() == b'{"steps": 1}'
    secret = tmp_path / "secret.env"
    secret.write_bytes(b"WEARABLES_SECRET_KEY=x")
    path.unlink()
    path.symlink_to(secret)
    with pytest.raises(UnreadableFile) as refused:
        file.read_bytes()
    assert refused.value.reason == "a symlink (never followed)"
    other = tmp_path / "other.json"
    other.write_bytes(b"{}")
    os.replace(other, path)  # another file at the same place (as a swapped folder above it gives): refused
    with pytest.raises(UnreadableFile):
        file.read_bytes()


def test_a_file_above_the_size_cap_is_skipped_unread(tmp_path: Path) -> None:
    big = _day_file(tmp_path)
    with big.open("wb") as sparse:
        sparse.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    exact = big.parent / "activities_steps_date_2021-11-11_1d_1min.json"
    with exact.open("wb") as sparse:
        sparse.truncate(MAX_FILE_BYTES)
    scan = scan_archive(tmp_path)
    assert [f.path for f in scan.files] == [exact]
    assert [(s.path, s.reason) for s in scan.skipped] == [(big, "larger than 64 MiB")]
    (file,) = scan.files
    with exact.open("r+b") as growing:  # a scanned file that grew past the cap is refused when read
        growing.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(UnreadableFile) as refused:
        file.read_bytes()
    assert refused.value.reason == "larger than 64 MiB"


def test_names_that_are_not_utf8_and_impossible_dates_are_skipped_the_rest_scanned(tmp_path: Path) -> None:
    good = _day_file(tmp_path)
    good.write_bytes(b"{}")
    folder = os.fsencode(good.parent)
    bad_name = os.open(folder + b"/activities_steps_date_2021-11-11_\xff.json", os.O_CREAT | os.O_WRONLY)
    os.close(bad_name)
    os.makedirs(os.fsencode(tmp_path / "FITBIT" / "sleep") + b"/P12345\xfe7890")
    os.close(os.open(os.fsencode(tmp_path / "FITBIT" / "sleep") + b"/P12345\xfe7890/sleep_date_2021-11-10.json",
                     os.O_CREAT | os.O_WRONLY))
    (good.parent / "activities_steps_date_2021-13-45_1d_1min.json").write_bytes(b"{}")
    (good.parent / "activities_steps_date_2021-02-29_1d_1min.json").write_bytes(b"{}")

    scan = scan_archive(tmp_path)
    assert [f.path for f in scan.files] == [good]
    assert sorted(s.reason for s in scan.skipped) == [
        "name is not valid UTF-8", "name is not valid UTF-8",
        "the date in the file name is no calendar date", "the date in the file name is no calendar date"]


_ARABIC_INDIC = "".join(chr(0x0660 + int(d)) for d in "1234567890")  # U+0661..U+0660, which \d matches
_NOT_PARTICIPANTS = ["P1234567890\n", "P" + _ARABIC_INDIC, "P123456789\uff10", "P12345678901", "p1234567890"]


@pytest.mark.parametrize("folder", _NOT_PARTICIPANTS)
def test_participant_folders_are_p_and_ten_ascii_digits_nothing_more(tmp_path: Path, folder: str) -> None:
    _day_file(tmp_path, folder).write_bytes(b"{}")
    scan = scan_archive(tmp_path)
    assert scan.files == []
    assert [s.reason for s in scan.skipped] == ["participant folder is not P followed by 10 digits"]


def test_arabic_indic_digits_are_no_date(tmp_path: Path) -> None:
    indic = "".join(chr(0x0660 + int(d)) if d.isdigit() else d for d in "2021-11-10")
    _day_file(tmp_path, name=f"activities_steps_date_{indic}_1d_1min.json").write_bytes(b"{}")
    assert [s.reason for s in scan_archive(tmp_path).skipped] == ["no YYYY-MM-DD date in the file name"]


def test_a_skip_reason_never_carries_a_participant_id(tmp_path: Path) -> None:
    person = COHORT.participant_ids[0]
    misplaced = tmp_path / "FITBIT" / person / person / "activities_steps_date_2021-11-10_1d_1min.json"
    misplaced.parent.mkdir(parents=True)
    misplaced.write_bytes(b"{}")
    (skipped,) = scan_archive(tmp_path).skipped
    assert skipped.reason == "unknown resource folder" and person not in skipped.reason
