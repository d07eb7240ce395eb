from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from connectors.archive import Profile, scan_archive
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
