"""Dataset (sinks/dataset.py) on a temporary path: one file per table and date, the newest row of
a key wins, the same rows give the same bytes, and a partition is replaced atomically."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from sinks.dataset import Dataset
from sinks.tables import make_table

READINGS = make_table("readings", "test readings", [
    ("person_id", pl.String(), "", "who", "record key"),
    ("datetime", pl.Datetime("us"), "", "when (local)", "sample"),
    ("value", pl.Int64(), "count", "the reading", "sample"),
], key=("person_id", "datetime"), partition_by="datetime")
DAY1, DAY2 = date(2026, 11, 1), date(2026, 11, 2)


def _rows(*rows: tuple[str, datetime, int]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=READINGS.schema, orient="row")


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_upsert_writes_one_file_per_table_and_date(tmp_path: Path) -> None:
    dataset = Dataset(str(tmp_path))
    written = dataset.upsert(READINGS, _rows(("R2", datetime(2026, 11, 2, 8), 5), ("R1", datetime(2026, 11, 1, 9), 1),
                                             ("R1", datetime(2026, 11, 1, 8), 2)))
    assert written == {DAY2: 1, DAY1: 2}
    assert list(_files(tmp_path)) == ["readings/date=2026-11-01/data.parquet", "readings/date=2026-11-02/data.parquet"]
    assert dataset.dates("readings") == [DAY1, DAY2]
    assert dataset.read(READINGS, DAY1).rows() == [("R1", datetime(2026, 11, 1, 8), 2),
                                                   ("R1", datetime(2026, 11, 1, 9), 1)]  # sorted by key
    assert dataset.read_all(READINGS).height == 3
    assert dataset.read_all(READINGS, [DAY2])["person_id"].to_list() == ["R2"]
    hive = pl.scan_parquet(f"{tmp_path}/readings/**/*.parquet", hive_partitioning=True).collect()
    assert sorted(hive["date"].unique().to_list()) == [DAY1, DAY2]


def test_the_newest_row_of_a_key_wins(tmp_path: Path) -> None:
    dataset = Dataset(str(tmp_path))
    at = datetime(2026, 11, 1, 8)
    dataset.upsert(READINGS, _rows(("R1", at, 1), ("R2", at, 10)))
    assert dataset.upsert(READINGS, _rows(("R1", at, 2), ("R1", at, 3))) == {DAY1: 2}  # last of a batch, too
    assert dataset.read(READINGS, DAY1).rows() == [("R1", at, 3), ("R2", at, 10)]


def test_the_same_rows_again_change_no_byte(tmp_path: Path) -> None:
    dataset = Dataset(str(tmp_path))
    rows = _rows(("R1", datetime(2026, 11, 1, 8), 1), ("R2", datetime(2026, 11, 2, 8), 2))
    dataset.upsert(READINGS, rows)
    before = _files(tmp_path)
    dataset.upsert(READINGS, rows.reverse())
    assert dataset.upsert(READINGS, rows.head(0)) == {}
    assert _files(tmp_path) == before


def test_missing_partitions_and_tables_read_as_empty(tmp_path: Path) -> None:
    dataset = Dataset(str(tmp_path / "nowhere"))
    assert dataset.dates("readings") == []
    empty = dataset.read(READINGS, DAY1)
    assert empty.height == 0 and empty.schema == READINGS.schema
    assert dataset.read_all(READINGS).height == 0


def test_replace_makes_a_partition_hold_exactly_the_rows_and_empty_deletes_it(tmp_path: Path) -> None:
    dataset = Dataset(str(tmp_path))
    dataset.upsert(READINGS, _rows(("R1", datetime(2026, 11, 1, 8), 1), ("R2", datetime(2026, 11, 1, 9), 2),
                                   ("R3", datetime(2026, 11, 2, 9), 3)))
    dataset.replace(READINGS, DAY1, _rows(("R9", datetime(2026, 11, 1, 7), 9)))
    assert dataset.read(READINGS, DAY1).rows() == [("R9", datetime(2026, 11, 1, 7), 9)]
    dataset.replace(READINGS, DAY1, _rows())
    assert dataset.dates("readings") == [DAY2]
    assert list(_files(tmp_path)) == ["readings/date=2026-11-02/data.parquet"]


def test_a_failed_write_leaves_the_old_file_and_no_parquet_litter(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = Dataset(str(tmp_path))
    dataset.upsert(READINGS, _rows(("R1", datetime(2026, 11, 1, 8), 1)))
    before = dataset.read(READINGS, DAY1)

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        dataset.upsert(READINGS, _rows(("R1", datetime(2026, 11, 1, 8), 2)))
    monkeypatch.undo()
    assert dataset.read(READINGS, DAY1).equals(before)
    assert [p.name for p in tmp_path.rglob("*.parquet")] == ["data.parquet"]  # the half-written one is *.tmp
    dataset.upsert(READINGS, _rows(("R1", datetime(2026, 11, 1, 8), 2)))  # a later write goes through
    assert dataset.read(READINGS, DAY1)["value"].to_list() == [2]


def test_an_object_store_url_holds_the_same_rows_as_a_path(tmp_path: Path) -> None:
    rows = _rows(("R1", datetime(2026, 11, 1, 8), 1), ("R2", datetime(2026, 11, 2, 8), 2))
    local, remote = Dataset(str(tmp_path)), Dataset(f"memory://dataset-{uuid.uuid4().hex}")
    for dataset in (local, remote):
        dataset.upsert(READINGS, rows)
    assert remote.dates("readings") == local.dates("readings") == [DAY1, DAY2]
    assert remote.read_all(READINGS).equals(local.read_all(READINGS))
    assert remote.path("readings", DAY1).endswith("/readings/date=2026-11-01/data.parquet")


def test_remove_takes_out_the_keys_given_and_rewrites_only_what_changed(tmp_path: Path) -> None:
    dataset = Dataset(str(tmp_path))
    dataset.upsert(READINGS, _rows(("a", datetime(2026, 11, 1, 8), 1), ("a", datetime(2026, 11, 1, 9), 2),
                                   ("b", datetime(2026, 11, 1, 9), 3), ("a", datetime(2026, 11, 2, 9), 4)))
    before = _files(tmp_path)
    # the value does not matter, the key does; a key that is not there removes nothing
    removed = dataset.remove(READINGS, _rows(("a", datetime(2026, 11, 1, 9), 99), ("a", datetime(2026, 11, 2, 7), 0)))
    assert removed == {DAY1: 1}
    assert dataset.read(READINGS, DAY1).rows() == [("a", datetime(2026, 11, 1, 8), 1),
                                                   ("b", datetime(2026, 11, 1, 9), 3)]
    after = _files(tmp_path)
    day2 = next(name for name in before if "2026-11-02" in name)
    assert after[day2] == before[day2]  # a partition that held none of the keys is not rewritten
    assert dataset.remove(READINGS, _rows(("a", datetime(2026, 11, 1, 8), 1), ("b", datetime(2026, 11, 1, 9), 3))
                          ) == {DAY1: 2}
    assert dataset.dates(READINGS.name) == [DAY2]  # emptied: the file is gone
