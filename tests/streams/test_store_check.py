"""``set_aside_damaged_stores`` (streams/runner.py): a RocksDB store that cannot be read is moved
aside before the worker starts, so that Faust rebuilds it from its changelog."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import rocksdict

from streams.runner import set_aside_damaged_stores, stores_ahead_of


def _store(path: Path, records: int = 2000) -> None:
    """A store as Faust leaves it (raw mode), its records flushed to an SST file."""
    db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
    for n in range(records):
        db.put(f"R{n:020d}|2026-11-03".encode(), os.urandom(200))
    db.flush()
    db.close()


def _one(path: Path, pattern: str) -> Path:
    (found,) = path.glob(pattern)
    return found


def _empty_current(path: Path) -> None:
    (path / "CURRENT").write_bytes(b"")


def _truncate_sst(path: Path) -> None:
    sst = _one(path, "*.sst")
    os.truncate(sst, sst.stat().st_size // 2)


def _overwrite_sst_blocks(path: Path) -> None:  # the size is right: the open succeeds, reads fail
    with _one(path, "*.sst").open("r+b") as sst:
        sst.seek(1000)
        sst.write(b"\x55" * 5000)


def _damage_manifest(path: Path) -> None:
    with _one(path, "MANIFEST-*").open("r+b") as manifest:
        manifest.seek(10)
        manifest.write(b"not a manifest record")


@pytest.mark.parametrize("damage", [_empty_current, _truncate_sst, _overwrite_sst_blocks, _damage_manifest])
def test_a_damaged_store_is_moved_aside_and_a_sound_one_is_kept(tmp_path: Path, damage: object) -> None:
    sound, damaged = tmp_path / "watermarks-0.db", tmp_path / "days-0.db"
    _store(sound)
    _store(damaged)
    damage(damaged)  # type: ignore[operator]
    moved = set_aside_damaged_stores(tmp_path)
    assert [p.name.partition(".corrupt-")[0] for p in moved] == ["days-0.db"]
    assert not damaged.exists() and moved[0].is_dir() and sound.is_dir()
    db = rocksdict.Rdict(str(sound), options=rocksdict.Options(raw_mode=True))
    try:
        assert len(list(db.keys())) == 2000
    finally:
        db.close()
    assert set_aside_damaged_stores(tmp_path) == []  # what was moved aside is not looked at again


def test_no_table_directory_yet_is_nothing_to_check(tmp_path: Path) -> None:
    assert set_aside_damaged_stores(tmp_path / "v1" / "tables") == []


def _store_at_offset(path: Path, offset: int) -> None:
    db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
    db.put(b"R00000000000000000001|2026-11-03", b"state")
    db.put(b"__faust\0offset__", str(offset).encode())  # faust.stores.rocksdb.RocksDB.offset_key
    db.flush()
    db.close()


def test_a_store_ahead_of_its_changelog_is_found_and_one_at_its_end_is_not(tmp_path: Path) -> None:
    _store_at_offset(tmp_path / "days-0.db", 22)  # the changelog was made again: it ends at 0
    _store_at_offset(tmp_path / "days-1.db", 22)  # the changelog ends at 23: offset 22 is its last record
    _store_at_offset(tmp_path / "watermarks-0.db", 5)  # its topic is missing altogether
    found = stores_ahead_of(tmp_path, {("days", 0): 0, ("days", 1): 23})
    assert [(p.name, table, partition) for p, table, partition in found] == [
        ("days-0.db", "days", 0), ("watermarks-0.db", "watermarks", 0)]
