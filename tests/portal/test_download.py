"""download_zip: every table's CSV with only the participant's rows, the data dictionary and a README."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from portal.download import download_zip
from sinks.dataset import Dataset
from sinks.dictionary import DICTIONARY_PATH, render
from sinks.tables import TABLES
from sinks.writer import DatasetWriter
from tests.portal.test_my_data import _syncs
from tests.sinks.helpers import cohort_records

ROOT = Path(__file__).resolve().parents[2]


def _write(dataset: Dataset) -> tuple[str, str]:
    """A two-participant cohort (A with sleep and vendor activity summaries too), each with a device."""
    summaries, batches, a = cohort_records(participants=2, days=2)
    b = next(s.research_id for s in summaries if s.research_id != a)
    devices = [_syncs(a, "D" + "1" * 16, "Charge 6", "TRACKER", (datetime(2026, 11, 1, 8), 80.0)),
               _syncs(b, "D" + "2" * 16, "Pixel Watch 3", "WATCH", (datetime(2026, 11, 2, 9), 40.0))]
    DatasetWriter(dataset).apply(summaries, [*batches, *devices])
    return a, b


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture
def cohort(tmp_path: Path) -> tuple[Dataset, str, str]:
    dataset = Dataset(str(tmp_path / "dataset"))
    a, b = _write(dataset)
    return dataset, a, b


def test_every_table_holds_exactly_the_participants_rows(cohort: tuple[Dataset, str, str]) -> None:
    dataset, a, _ = cohort
    members = _members(download_zip(dataset, a))
    assert set(members) == {f"{name}.csv" for name in TABLES} | {"data_dictionary.md", "README.txt"}
    for name, table in TABLES.items():
        expected = dataset.read_all(table).filter(pl.col("person_id") == a).sort(list(table.key))
        assert expected.height > 0, name  # the cohort gives A rows in every table
        written = pl.read_csv(members[f"{name}.csv"], schema=table.schema)
        assert written.height == expected.height, name
        assert written["person_id"].unique().to_list() == [a], name
        assert members[f"{name}.csv"] == expected.write_csv().encode(), name


def test_no_other_participants_row(cohort: tuple[Dataset, str, str]) -> None:
    dataset, a, b = cohort
    assert dataset.read_all(TABLES["steps_intraday"]).filter(pl.col("person_id") == b).height > 0
    data = download_zip(dataset, a)
    assert b.encode() not in data
    assert all(b.encode() not in content for content in _members(data).values())
    assert b"Pixel Watch" not in _members(data)["device.csv"]


def test_the_dictionary_is_the_researchers_and_the_readme_plain(cohort: tuple[Dataset, str, str]) -> None:
    dataset, a, _ = cohort
    members = _members(download_zip(dataset, a))
    assert members["data_dictionary.md"].decode() == render() == (ROOT / DICTIONARY_PATH).read_text()
    readme = members["README.txt"].decode()
    assert all(f"{name}.csv" in readme for name in TABLES)
    assert "true dates" in readme and "All of Us" in readme


def test_someone_without_data_gets_headers_only(tmp_path: Path) -> None:
    members = _members(download_zip(Dataset(str(tmp_path / "none")), "R" + "0" * 20))
    for name, table in TABLES.items():
        assert members[f"{name}.csv"].decode() == ",".join(table.schema.names()) + "\n"


def test_an_object_store_url_gives_the_same_zip_content(cohort: tuple[Dataset, str, str]) -> None:
    local, a, _ = cohort
    store = Dataset(f"memory://download-{uuid.uuid4().hex}")
    _write(store)
    try:
        assert _members(download_zip(store, a)) == _members(download_zip(local, a))
    finally:
        store.fs.rm(store.root, recursive=True)
