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


def _files(out: Path, table: str, fmt: str = "parquet") -> list[Path]:
    """A table's export files in name order (a researcher's ``ls``)."""
    return sorted((out / table).glob(f"*.{fmt}"))


def _read(out: Path, table: str, fmt: str = "parquet") -> pl.DataFrame:
    files = _files(out, table, fmt)
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


# --------------------------------------------------------------------------- the layout tells no shift
PEOPLE, DAYS = 6, 10
PROBED = {"daily_summary": "date", "steps_intraday": "datetime", "heart_rate_minute_level": "datetime",
          "activity_summary": "date"}


def _moved(dataset: Dataset, root: Path, days: int) -> Dataset:
    """The same cohort with every true date and datetime ``days`` later."""
    moved = Dataset(str(root))
    for table in TABLES.values():
        for day in dataset.dates(table.name):
            rows = dataset.read(table, day)
            dated = [n for n, t in rows.schema.items() if isinstance(t, pl.Date | pl.Datetime)]
            moved.write(table, day + timedelta(days=days),
                        rows.with_columns([(pl.col(n) + pl.duration(days=days)).alias(n) for n in dated]))
    return moved


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, list[str]]:
    """Six participants' ten true days from 2026-11-01, the public first day of collection."""
    summaries, batches, _ = cohort_records(participants=PEOPLE, days=DAYS)
    dataset = Dataset(str(tmp_path_factory.mktemp("cohort")))
    DatasetWriter(dataset).apply(summaries, batches)
    return dataset, sorted({s.research_id for s in summaries})


def _true_day(frame: pl.DataFrame, column: str) -> pl.Series:
    """Each exported row's true date (what the attacker wants): shifted date + the row's shift."""
    shift = frame["person_id"].map_elements(lambda p: date_shift_days(SECRET, p), return_dtype=pl.Int64)
    return frame.select((pl.col(column).cast(pl.Date) + pl.duration(days=shift)).alias("true"))["true"]


def test_registered_layout_is_the_same_whatever_the_true_dates(cohort: tuple[Dataset, list[str]],
                                                               tmp_path: Path) -> None:
    dataset, _ = cohort
    moved = _moved(dataset, tmp_path / "moved", 40)
    export(dataset, tmp_path / "a", tier=Tier.REGISTERED, first=None, last=None, fmt=Format.PARQUET, secret=SECRET)
    export(moved, tmp_path / "b", tier=Tier.REGISTERED, first=None, last=None, fmt=Format.PARQUET, secret=SECRET)
    fewer = FIRST + timedelta(days=3)  # fewer true days: the same files
    export(dataset, tmp_path / "c", tier=Tier.REGISTERED, first=fewer, last=fewer + timedelta(days=2),
           fmt=Format.PARQUET, secret=SECRET)
    names = {run: sorted(str(p.relative_to(tmp_path / run)) for p in (tmp_path / run).rglob("*") if p.is_file())
             for run in "abc"}
    assert names["a"] == names["b"] == names["c"] == sorted(f"{t}/{t}.parquet" for t in TABLES)
    for table, column in DATED.items():
        order = ["person_id", TABLES[table].partition_by,
                 *[k for k in TABLES[table].key if k not in ("person_id", TABLES[table].partition_by)]]
        a, b = _read(tmp_path / "a", table), _read(tmp_path / "b", table)
        assert a.height == b.height > 0
        assert a["person_id"].to_list() == b["person_id"].to_list()  # the same rows in the same places
        assert ((b[column].cast(pl.Datetime("us")) - a[column].cast(pl.Datetime("us"))).dt.total_days() == 40).all()
        assert a.equals(a.sort(order, nulls_last=True, maintain_order=True))  # person_id, then shifted date


def test_no_file_or_row_position_pins_a_true_date(cohort: tuple[Dataset, list[str]], tmp_path: Path) -> None:
    dataset, people = cohort
    export(dataset, tmp_path, tier=Tier.REGISTERED, first=None, last=None, fmt=Format.CSV, secret=SECRET)
    for table, column in PROBED.items():
        files = _files(tmp_path, table, "csv")
        rows = [pl.read_csv(f, try_parse_dates=True) for f in files]
        for frame in rows:  # rows that share a file do not share one true date across participants
            assert frame["person_id"].n_unique() > 1
            assert _true_day(frame, column).n_unique() > 1, table
        every = pl.concat(rows)
        true = _true_day(every, column)
        assert set(every["person_id"]) == set(people) and true.n_unique() >= DAYS - 1
        assert not true.is_sorted()  # reading the files in order does not walk the true calendar
        rank = pl.DataFrame({"rank": range(every.height), "true": true.cast(pl.Int64)})
        rho = rank.select(pl.corr("rank", "true", method="spearman")).item()
        assert abs(rho) < 0.5, (table, rho)  # a row's position says little about its true date


def test_the_audit_probe_recovers_no_shift(cohort: tuple[Dataset, list[str]], tmp_path: Path) -> None:
    """Security audit finding 1: file number n + the public first date -> true date FIRST + n - 1, so
    every participant's shift = that date - the shifted date of their rows in file n."""
    dataset, people = cohort
    export(dataset, tmp_path, tier=Tier.REGISTERED, first=None, last=None, fmt=Format.PARQUET, secret=SECRET)
    guesses: dict[str, set[int]] = {}
    for n, path in enumerate(_files(tmp_path, "daily_summary"), start=1):
        assumed = FIRST + timedelta(days=n - 1)
        for (person,), rows in pl.read_parquet(path).group_by("person_id"):
            if rows["date"].n_unique() == 1:  # the file pins this person's rows to one day
                guesses.setdefault(str(person), set()).add((assumed - rows["date"][0]).days)
    recovered = [p for p in people if guesses.get(p) == {date_shift_days(SECRET, p)}]
    assert recovered == []


def test_dates_shift_as_dates() -> None:
    frame = pl.DataFrame({"person_id": ["Rabc"], "date": [date(2026, 3, 1)]})
    shifted = shift_dates(frame, SECRET)
    assert shifted["date"][0] == date(2026, 3, 1) - timedelta(days=date_shift_days(SECRET, "Rabc"))
