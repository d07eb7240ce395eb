"""Dataset (sinks/dataset.py) on a temporary path: one file per table and date, the newest row of
a key wins, the same rows give the same bytes, and a partition is replaced atomically."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from prometheus_client import REGISTRY

import sinks.dataset
from sinks.dataset import CorruptPartition, Dataset
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


class _FullDisk:
    """A file whose writes stop part-way with ENOSPC, the way ``write(2)`` fails on a full disk."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def write(self, data: Any) -> int:
        self._handle.write(bytes(data)[:64])  # some bytes reach the disk first
        self._handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    def full_open(path: str, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = open(path, mode, *args, **kwargs)
        return _FullDisk(handle) if "w" in mode else handle

    monkeypatch.setattr(sinks.dataset, "open", full_open, raising=False)


def test_a_write_on_a_full_disk_leaves_no_temporary_file_and_the_old_file(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # audit finding 21: each failed write used to leave its *.tmp behind, filling the disk further
    dataset = Dataset(str(tmp_path))
    dataset.upsert(READINGS, _rows(("R1", datetime(2026, 11, 1, 8), 1)))
    before = _files(tmp_path)
    _disk_full(monkeypatch)
    for _ in range(3):
        with pytest.raises(OSError) as info:
            dataset.upsert(READINGS, _rows(("R1", datetime(2026, 11, 1, 8), 2)))
        assert info.value.errno == errno.ENOSPC
    assert _files(tmp_path) == before  # no *.tmp, and the old file byte for byte
    monkeypatch.undo()
    assert dataset.read(READINGS, DAY1)["value"].to_list() == [1]
    dataset.upsert(READINGS, _rows(("R1", datetime(2026, 11, 1, 8), 2)))  # space again: the write goes through
    assert dataset.read(READINGS, DAY1)["value"].to_list() == [2]


def test_a_write_over_the_file_size_limit_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The kernel's own EFBIG (RLIMIT_FSIZE in a child process), as the audit's probe made it."""
    Dataset(str(tmp_path)).upsert(READINGS, _rows(("R1", datetime(2026, 11, 1, 8), 1)))
    before = _files(tmp_path)
    child = textwrap.dedent(f"""
        import errno, resource, signal
        from datetime import datetime, timedelta
        import polars as pl
        from sinks.dataset import Dataset
        from sinks.tables import make_table
        READINGS = make_table("readings", "test readings", [
            ("person_id", pl.String(), "", "who", "record key"),
            ("datetime", pl.Datetime("us"), "", "when (local)", "sample"),
            ("value", pl.Int64(), "count", "the reading", "sample"),
        ], key=("person_id", "datetime"), partition_by="datetime")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(2) rather than being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        rows = pl.DataFrame([(f"R{{n}}", datetime(2026, 11, 1) + timedelta(seconds=n), n * 7919)
                             for n in range(20000)], schema=READINGS.schema, orient="row")
        try:
            Dataset({str(tmp_path)!r}).upsert(READINGS, rows)
        except OSError as error:
            assert error.errno == errno.EFBIG, error
            print("EFBIG")
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2], check=False)
    assert result.stdout.strip() == "EFBIG", result.stdout + result.stderr
    assert _files(tmp_path) == before


def test_the_file_is_fsynced_before_the_rename_and_the_directory_after(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd: int) -> None:
        calls.append("fsync directory" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync file")
        fsync(fd)

    def recording_replace(src: str, dst: str) -> None:
        calls.append("replace")
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    Dataset(str(tmp_path)).upsert(READINGS, _rows(("R1", datetime(2026, 11, 1, 8), 1)))
    assert calls == ["fsync file", "replace", "fsync directory"]


def test_stale_temporary_files_are_removed_and_fresh_ones_kept(tmp_path: Path) -> None:
    dataset = Dataset(str(tmp_path))
    dataset.upsert(READINGS, _rows(("R1", datetime(2026, 11, 1, 8), 1)))
    folder = Path(dataset.path(READINGS.name, DAY1)).parent
    stale, fresh, other = folder / "data.parquet.0a1b.tmp", folder / "data.parquet.2c3d.tmp", folder / "notes.tmp"
    for path in (stale, fresh, other):
        path.write_bytes(b"half")
    an_hour_ago = time.time() - 3700
    os.utime(stale, (an_hour_ago, an_hour_ago))
    os.utime(other, (an_hour_ago, an_hour_ago))
    assert dataset.remove_stale_temporaries() == 1
    assert sorted(p.name for p in folder.iterdir()) == ["data.parquet", "data.parquet.2c3d.tmp", "notes.tmp"]
    assert Dataset(str(tmp_path / "nowhere")).remove_stale_temporaries() == 0


def _corrupt(dataset: Dataset, day: date) -> Path:
    path = Path(dataset.path(READINGS.name, day))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a torn file: no footer
    return path


def test_a_corrupt_partition_is_moved_aside_counted_and_rebuilt(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    # audit finding 10: a corrupted partition file made every flush touching its date raise
    dataset = Dataset(str(tmp_path), quarantine=True)
    dataset.upsert(READINGS, _rows(("R1", datetime(2026, 11, 1, 8), 1), ("R2", datetime(2026, 11, 2, 8), 2)))
    path = _corrupt(dataset, DAY1)
    count = REGISTRY.get_sample_value("wearables_sink_quarantined_files_total", {"table": "readings"}) or 0.0
    assert dataset.read(READINGS, DAY1).height == 0  # read as empty ...
    assert REGISTRY.get_sample_value("wearables_sink_quarantined_files_total", {"table": "readings"}) == count + 1
    aside = [p.name for p in path.parent.iterdir() if p.name.startswith("data.parquet.corrupt-")]
    assert len(aside) == 1 and not path.exists()  # ... moved aside, where no *.parquet glob reads it
    assert [r.getMessage().count("\n") for r in caplog.records if "did not read" in r.getMessage()] == [0]
    assert dataset.upsert(READINGS, _rows(("R3", datetime(2026, 11, 1, 9), 3))) == {DAY1: 1}  # the date rebuilt
    hive = pl.scan_parquet(f"{tmp_path}/readings/**/*.parquet", hive_partitioning=True).collect()
    assert sorted(hive["person_id"].to_list()) == ["R2", "R3"]
    _corrupt(dataset, DAY2)
    assert dataset.remove_person(READINGS, "R2") == {}  # a purge reading it moves it aside too
    assert dataset.dates(READINGS.name) == [DAY1]


def test_a_corrupt_partition_raises_for_a_reader_that_does_not_quarantine(tmp_path: Path) -> None:
    dataset = Dataset(str(tmp_path))
    dataset.upsert(READINGS, _rows(("R1", datetime(2026, 11, 1, 8), 1)))
    path = _corrupt(dataset, DAY1)
    with pytest.raises(CorruptPartition, match="readings/date=2026-11-01"):
        dataset.read(READINGS, DAY1)
    assert path.exists()  # an export or the portal leaves the file where it is
