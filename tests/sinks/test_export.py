"""wearables export: the registered tier shifts each participant's dates by their own constant
1-364 days; the controlled tier keeps true dates."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from cli.main import main
from models.ids import date_shift_days
from runtime.settings import Settings
from sinks.dataset import Dataset
from sinks.export import Format, Tier, export, shift_dates
from sinks.tables import TABLES
from sinks.writer import DatasetWriter
from tests.sinks.helpers import FIRST, cohort_records

SECRET = Settings(env="demo").require_secret_key()
DATED = {"activity_summary": "date", "heart_rate_summary": "date", "heart_rate_minute_level": "datetime",
         "steps_intraday": "datetime", "sleep_daily_summary": "sleep_date", "sleep_level": "sleep_date",
         "daily_summary": "date"}


@pytest.fixture(scope="module")
def one_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, list[str]]:
    """Six participants' single true day, 2026-11-01 (sleep logs began the evening before)."""
    summaries, batches, _ = cohort_records(participants=6, days=1)
    dataset = Dataset(str(tmp_path_factory.mktemp("dataset")))
    DatasetWriter(dataset).apply(summaries, batches)
    return dataset, sorted({s.research_id for s in summaries})


def _read(out: Path, table: str, fmt: str = "parquet") -> pl.DataFrame:
    files = sorted((out / table).glob(f"part-*.{fmt}"))
    if fmt == "csv":
        return pl.concat([pl.read_csv(f, try_parse_dates=True) for f in files])
    return pl.concat([pl.read_parquet(f) for f in files])


def test_registered_tier_shifts_each_participant_by_one_constant(one_day: tuple[Dataset, list[str]],
                                                                 tmp_path: Path) -> None:
    dataset, people = one_day
    export(dataset, tmp_path, tier=Tier.REGISTERED, first=None, last=None, fmt=Format.PARQUET, secret=SECRET)
    seen: dict[str, set[int]] = {}
    for table, column in DATED.items():
        true = dataset.read_all(TABLES[table]).sort("person_id", column)
        shifted = _read(tmp_path, table).sort("person_id", column)
        assert shifted.height == true.height > 0
        delta = (true[column].cast(pl.Datetime("us")) - shifted[column].cast(pl.Datetime("us"))).dt.total_days()
        for person, days in zip(true["person_id"], delta, strict=True):
            seen.setdefault(person, set()).add(days)
    shifts = {person: days.pop() for person, days in seen.items() if len(days) == 1}
    assert len(shifts) == len(seen) == len(people)  # one shift per participant, across tables and days
    assert all(1 <= s <= 364 for s in shifts.values())
    assert shifts == {p: date_shift_days(SECRET, p) for p in people}
    assert len(set(shifts.values())) > 1  # not one shift for everyone


def test_no_true_date_appears_in_a_registered_export(one_day: tuple[Dataset, list[str]], tmp_path: Path) -> None:
    dataset, _ = one_day
    export(dataset, tmp_path, tier=Tier.REGISTERED, first=None, last=None, fmt=Format.CSV, secret=SECRET)
    true_dates = {FIRST.isoformat(), (FIRST - timedelta(days=1)).isoformat(), (FIRST + timedelta(days=1)).isoformat()}
    text = "".join(p.read_text() for p in tmp_path.rglob("*.csv"))
    assert text and not [d for d in true_dates if d in text]
    assert not [p for p in tmp_path.rglob("*") if any(d in p.name for d in true_dates)]


def test_controlled_tier_keeps_true_dates_and_selects_by_them(tmp_path: Path) -> None:
    summaries, batches, _ = cohort_records(participants=2, days=3)
    dataset = Dataset(str(tmp_path / "dataset"))
    DatasetWriter(dataset).apply(summaries, batches)
    second = FIRST + timedelta(days=1)
    report = export(dataset, tmp_path / "out", tier=Tier.CONTROLLED, first=second, last=second, fmt=Format.PARQUET,
                    secret=SECRET)
    daily = _read(tmp_path / "out", "daily_summary")
    assert set(daily["date"]) == {second} and daily.height == 2 == report.rows["daily_summary"]
    assert daily.sort("person_id")["steps"].to_list() == [
        s.steps for s in sorted(summaries, key=lambda s: s.research_id) if s.local_date == second.isoformat()]


def test_export_command(one_day: tuple[Dataset, list[str]], tmp_path: Path) -> None:
    dataset, people = one_day
    result = CliRunner().invoke(main, ["export", "--tier", "registered", "--format", "csv", "--out", str(tmp_path),
                                       "--dataset", dataset.location], env={"WEARABLES_ENV": "demo"})
    assert result.exit_code == 0, result.output
    assert "daily_summary" in result.output and f"{len(people)} rows" in result.output.replace(",", "")
    assert _read(tmp_path, "daily_summary", "csv").height == len(people)
    missing = CliRunner().invoke(main, ["export", "--tier", "controlled", "--out", str(tmp_path / "x"),
                                        "--dataset", str(tmp_path / "nothing")], env={"WEARABLES_ENV": "demo"})
    assert missing.exit_code == 1 and "wearables sink" in missing.output


def test_dates_shift_as_dates() -> None:
    frame = pl.DataFrame({"person_id": ["Rabc"], "date": [date(2026, 3, 1)]})
    shifted = shift_dates(frame, SECRET)
    assert shifted["date"][0] == date(2026, 3, 1) - timedelta(days=date_shift_days(SECRET, "Rabc"))
