"""wearables replay on archives built from the Fitabase export (Furberg et al. 2016, Zenodo
10.5281/zenodo.53894, CC BY 4.0; tests/data/fitabase/README.md):

- with every profile: daily_summary.steps equals the minute sums of every participant-day, and a
  second replay changes no file;
- without profiles: refused (one line, nothing on the broker) until a default time zone is given,
  then every day exact: steps and Fitbit's own totals from the CSVs, heart-rate figures from the
  archive's heart pages, and each participant's first and last sample in their own zone (the
  profile's, else the default);
- every page a dead letter: the final table says why, and the replay exits 2 with one line.

The Fitabase export has no heart-rate file (tests/data/fitabase/README.md), so the heart pages
are the vendor simulator's Fitbit JSON for the same participants and days; their expected
figures are computed here from the JSON files the archive holds.
"""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import polars as pl
import pytest

from cli.replay import run_replay
from cli.topics import all_topic_plans, create_all_topics
from connectors.simulator.cohort import SyntheticCohort
from models.ids import research_id
from runtime.kafka import make_consumer
from runtime.settings import Settings
from tests.builders import fitbit_intraday_body
from tests.conftest import FITABASE

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _archive(root: Path, minutes: Any) -> Path:
    base = root / "FITBIT"
    by_day = minutes.with_columns(day=pl.col("local").dt.date(), time=pl.col("local").dt.strftime("%H:%M:%S"))
    for (person, day), rows in by_day.group_by(["id", "day"], maintain_order=True):
        folder = base / "activities-steps-intraday" / f"P{person}"
        folder.mkdir(parents=True, exist_ok=True)
        body = fitbit_intraday_body("steps", day, rows.select("time", value="steps").to_dicts())
        (folder / f"activities_steps_date_{day}_1d_1min.json").write_bytes(body)
        profile = base / "profile" / f"P{person}" / "profile.json"
        if not profile.exists():
            profile.parent.mkdir(parents=True, exist_ok=True)
            profile.write_text('{"user": {"timezone": "UTC", "offsetFromUTCMillis": 0}}')
    return root


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


async def test_replay_of_fitabase_gives_exact_daily_steps(settings_factory: Callable[..., Settings],
                                                          fitabase_minutes: Any, tmp_path: Path) -> None:
    settings = settings_factory(sink_flush_interval=1.0)
    archive = _archive(tmp_path / "archive", fitabase_minutes)
    out = tmp_path / "dataset"
    report = await run_replay(settings, archive, out, timeout=300)

    secret = settings.require_secret_key()
    expected = (fitabase_minutes.group_by("id", day=pl.col("local").dt.date()).agg(pl.col("steps").sum())
                .select(person_id=pl.col("id").map_elements(lambda i: research_id(secret, f"P{i}"),
                                                            return_dtype=pl.String), date="day", steps="steps"))
    daily = pl.scan_parquet(f"{out}/daily_summary/**/*.parquet", hive_partitioning=True).select(
        "person_id", "date", "steps").collect()
    assert daily.height == expected.height == report.days
    joined = expected.join(daily, on=["person_id", "date"], how="left", suffix="_written")
    assert joined.filter(pl.col("steps") != pl.col("steps_written")).height == 0
    assert joined["steps_written"].null_count() == 0
    assert report.participants == fitabase_minutes["id"].n_unique() == 33
    assert report.samples == fitabase_minutes.height

    _run_readme_snippet(out, expected)

    before = _files(out)
    again = await run_replay(settings, archive, out, timeout=300)
    assert _files(out) == before
    assert again.days == report.days


def _run_readme_snippet(out: Path, expected: pl.DataFrame) -> None:
    """The README's "read the dataset" snippet, run in a fresh Python process against this dataset."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- readme-snippet: read-dataset -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert 'dataset = "var/dataset"' in block
    code = block.replace('dataset = "var/dataset"', f"dataset = {str(out)!r}")
    code += "\nprint('ROWS', days.height)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    valid = pl.scan_parquet(f"{out}/daily_summary/**/*.parquet", hive_partitioning=True).filter(
        pl.col("date").is_between(date(2016, 4, 12), date(2016, 4, 18)) & pl.col("valid_day")).collect()
    assert valid.height > 0 and f"ROWS {valid.height}" in result.stdout


# --------------------------------------------------------------------------- archives without profiles
PEOPLE = ("1503960366", "1624580081", "1644430081", "1844505072")  # the export's first four Ids
DAYS = (date(2016, 4, 13), date(2016, 4, 14), date(2016, 4, 15))  # each with all 24 hours of minutes
OWN_ZONE = {PEOPLE[0]: "America/Los_Angeles"}  # the only participant with a profile.json
DEFAULT_ZONE = "America/Chicago"
TODAY_PAGES = (PEOPLE[1], DAYS[1])  # this participant-day's pages say "dateTime": "today"; their file names the day
# the vendor's zone bounds on every heart page: low enough for the simulator's quiet days to reach each zone
HR_ZONES = [{"name": "Out of Range", "min": 30, "max": 85}, {"name": "Fat Burn", "min": 85, "max": 100},
            {"name": "Cardio", "min": 100, "max": 115}, {"name": "Peak", "min": 115, "max": 220}]
_ZONE_COLUMNS = {"Out of Range": "minutes_out_of_range", "Fat Burn": "minutes_fat_burn", "Cardio": "minutes_cardio",
                 "Peak": "minutes_peak"}


def _fitabase_daily_totals() -> dict[tuple[str, date], str]:
    """Fitbit's own daily step totals (dailySteps_merged.csv) of PEOPLE on DAYS."""
    with (FITABASE / "dailySteps_merged.csv").open(newline="") as file:
        rows = [(r["Id"], datetime.strptime(r["ActivityDay"], "%m/%d/%Y").date(), r["StepTotal"])
                for r in csv.DictReader(file)]
    return {(person, day): total for person, day, total in rows if person in PEOPLE and day in DAYS}


def _profileless_archive(root: Path, minutes: Any) -> Path:
    """PEOPLE x DAYS: Fitabase minute steps (with Fitbit's daily total) and a heart page each; one profile."""
    base = root / "FITBIT"
    heart = SyntheticCohort(1, seed=7)
    totals = _fitabase_daily_totals()
    chosen = minutes.filter(pl.col("id").is_in(PEOPLE) & pl.col("local").dt.date().is_in(DAYS)).with_columns(
        day=pl.col("local").dt.date(), time=pl.col("local").dt.strftime("%H:%M:%S"))
    for (person, day), rows in chosen.group_by(["id", "day"], maintain_order=True):
        steps = fitbit_intraday_body("steps", day, rows.select("time", value="steps").to_dicts(),
                                     daily=totals[(person, day)])
        rates = heart.minute_heart_rate(f"P{person}", day)
        dataset = [{"time": f"{m // 60:02d}:{m % 60:02d}:00", "value": v} for m, v in enumerate(rates) if v is not None]
        resting = min(v for v in rates if v is not None) + 4
        hr = fitbit_intraday_body("heart", day, dataset, daily={"customHeartRateZones": [], "heartRateZones": HR_ZONES,
                                                                "restingHeartRate": resting})
        for resource, name, body in (("activities-steps-intraday", f"activities_steps_date_{day}_1d_1min.json", steps),
                                     ("activities-heart-intraday", f"activities_heart_date_{day}_1d_1min.json", hr)):
            if (person, day) == TODAY_PAGES:  # as some exports hold pages fetched with .../date/today/...
                body = body.replace(f'"dateTime":"{day}"'.encode(), b'"dateTime":"today"')
            folder = base / resource / f"P{person}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(body)
    for person, zone in OWN_ZONE.items():
        profile = base / "profile" / f"P{person}" / "profile.json"
        profile.parent.mkdir(parents=True)
        profile.write_text(f'{{"user": {{"timezone": "{zone}", "offsetFromUTCMillis": -25200000}}}}')
    return root


def _expected_days(archive: Path, secret: bytes) -> dict[tuple[str, date], dict[str, Any]]:
    """Every participant-day's figures, from the Fitabase CSVs (steps) and the archive's own JSON (heart rate,
    first and last sample), in plain Python: none of the pipeline's code."""
    days: dict[tuple[str, date], dict[str, Any]] = defaultdict(dict)
    with (FITABASE / "minuteStepsWide_merged.csv").open(newline="") as file:
        for row in csv.DictReader(file):
            hour = datetime.strptime(row["ActivityHour"], "%m/%d/%Y %I:%M:%S %p")
            if row["Id"] in PEOPLE and hour.date() in DAYS:
                day = days[(row["Id"], hour.date())]
                day["steps"] = day.get("steps", 0) + sum(int(row[f"Steps{m:02d}"]) for m in range(60))
    for (person, day), total in _fitabase_daily_totals().items():
        days[(person, day)]["vendor_steps"] = int(total)
    for (person, day), figures in days.items():
        zone = ZoneInfo(OWN_ZONE.get(person, DEFAULT_ZONE))
        clock: list[time] = []
        for resource, kind in (("activities-steps-intraday", "steps"), ("activities-heart-intraday", "heart")):
            name = f"activities_{kind}_date_{day}_1d_1min.json"
            page = orjson.loads((archive / "FITBIT" / resource / f"P{person}" / name).read_bytes())
            dataset = page[f"activities-{kind}-intraday"]["dataset"]
            clock += [time.fromisoformat(item["time"]) for item in dataset]
            if kind == "heart":
                rates = [item["value"] for item in dataset]
                bounds = sorted((z["min"], z["name"]) for z in page["activities-heart"][0]["value"]["heartRateZones"])
                in_zone = {name: 0 for _, name in bounds}
                for rate in rates:  # the highest zone above Out of Range whose lower bound it reaches
                    above = [name for low, name in bounds[1:] if rate >= low]
                    in_zone[above[-1] if above else bounds[0][1]] += 1
                figures.update(hr_min=min(rates), hr_max=max(rates), hr_mean=sum(rates) / len(rates),
                               minutes_with_hr=len({item["time"][:5] for item in dataset if item["value"] > 0}),
                               vendor_resting_hr=page["activities-heart"][0]["value"]["restingHeartRate"],
                               **{_ZONE_COLUMNS[name]: n for name, n in in_zone.items()})
        local = [datetime.combine(day, min(clock)), datetime.combine(day, max(clock))]
        figures["first_sample_at"], figures["last_sample_at"] = (t.replace(tzinfo=zone).astimezone(UTC) for t in local)
    return {(research_id(secret, f"P{person}"), day): figures for (person, day), figures in days.items()}


def _replay_command(settings: Settings, archive: Path, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`wearables replay` in a process of its own, on the test's broker and topics."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEARABLES_", "KAFKA_"))}
    env.update({"KAFKA_BOOTSTRAP_SERVERS": str(settings.kafka.bootstrap_servers),
                "WEARABLES_TOPIC_PREFIX": settings.kafka.topic_prefix, "WEARABLES_ENV": "demo",
                "WEARABLES_DATA_DIR": str(settings.data_dir), "WEARABLES_STORE": "memory://",
                "WEARABLES_PARTITIONS": "4", "WEARABLES_SINK_FLUSH_INTERVAL": "1", "WEARABLES_LOG_LEVEL": "WARNING",
                "COLUMNS": "160"})
    return subprocess.run([sys.executable, "-m", "cli.main", "replay", str(archive), "--out", str(out), *options],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=240, check=False)


async def _records_on_broker(settings: Settings) -> int:
    """How many records every topic of the test (catalogue and Faust's) holds."""
    from aiokafka import TopicPartition

    names = [plan.name for plan in all_topic_plans(settings)]
    consumer = make_consumer(settings, *names)  # subscribed: start() waits for the topics' metadata
    await consumer.start()
    try:
        partitions = [TopicPartition(name, p) for name in names for p in consumer.partitions_for_topic(name) or ()]
        assert len(partitions) >= len(names)
        ends = await consumer.end_offsets(partitions)
        return sum(ends.values())
    finally:
        await consumer.stop()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("wearables: error:")]


async def test_replay_without_profiles_is_refused_until_a_default_zone_then_every_day_is_exact(
        settings_factory: Callable[..., Settings], fitabase_minutes: Any, tmp_path: Path) -> None:
    settings = settings_factory()
    archive = _profileless_archive(tmp_path / "archive", fitabase_minutes)
    out = tmp_path / "dataset"
    await create_all_topics(settings)  # so that "nothing published" is about topics that exist

    refused = _replay_command(settings, archive, out)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert _error_lines(refused.stderr) == [
        "wearables: error: 3 participants have no FITBIT/profile/<id>/profile.json (their time zone), so nothing was "
        "published: give --default-timezone ZONE or set WEARABLES_DEFAULT_TIMEZONE to the cohort's IANA zone "
        "(e.g. America/Chicago)"]
    assert refused.stderr.strip().count("\n") == 0 and refused.stdout == ""
    assert not any(person in refused.stderr for person in PEOPLE)
    assert await _records_on_broker(settings) == 0
    assert not out.exists()

    replayed = _replay_command(settings, archive, out, "--default-timezone", DEFAULT_ZONE)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert f"{len(PEOPLE) * len(DAYS) * 2} pages published" in replayed.stdout
    assert "no dead letters in this replay" in replayed.stdout
    expected = _expected_days(archive, settings.require_secret_key())
    written = pl.scan_parquet(f"{out}/daily_summary/**/*.parquet", hive_partitioning=True).collect()
    assert written.height == len(expected) == len(PEOPLE) * len(DAYS)
    assert written["rejects"].sum() == 0
    for row in written.iter_rows(named=True):
        figures = expected[(row["person_id"], row["date"])]
        assert {name: row[name] for name in figures} == {**figures, "hr_mean": pytest.approx(figures["hr_mean"])}
    assert all(written[column].sum() > 0 for column in _ZONE_COLUMNS.values())  # every zone was put to the test
    assert written.filter(pl.col("vendor_steps") != pl.col("steps")).height > 0  # and days where Fitbit differs


async def test_replay_whose_every_page_is_a_dead_letter_says_why_and_fails(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory()
    base = tmp_path / "archive" / "FITBIT"
    for resource, name, body in (("activities-steps-intraday", "activities_steps_date_2016-04-13_1d_1min.json", b"{}"),
                                 ("activities-heart-intraday", "activities_heart_date_2016-04-13_1d_1min.json", b"[")):
        (base / resource / "P1503960366").mkdir(parents=True)
        (base / resource / "P1503960366" / name).write_bytes(body)

    result = _replay_command(settings, tmp_path / "archive", tmp_path / "dataset", "--default-timezone", "UTC")
    assert result.returncode == 2, result.stdout + result.stderr
    assert _error_lines(result.stderr) == [
        "wearables: error: 2 pages were published but no day was summarized (2 dead letter(s), by reason above): fix "
        "what the reasons point at in the archive or the settings, then replay again"]
    letters = result.stdout.split("dead letters of this replay, by reason", 1)[1]
    reasons = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in letters.splitlines()
               if line.startswith("│")}
    assert reasons == {"missing_field": "1", "not_json": "1"}
