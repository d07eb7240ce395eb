"""The written files have the All of Us column lists and types (docs/vendors.md, "All of Us tables")."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson
import polars as pl
import pytest

from models.providers import Provider
from models.raw import RawPage
from models.samples import SampleBatch
from sinks.dataset import Dataset
from sinks.tables import TABLES
from sinks.writer import DatasetWriter
from streams.normalize import normalize
from tests.builders import SECRET, fitbit_page
from tests.sinks.helpers import cohort_records

# The curation schemas' columns in order, with their BigQuery types, typed out here on purpose
# (not derived from sinks.tables): a change there must show up as a failure here.
ALL_OF_US = {
    "activity_summary": [
        ("date", "date"), ("activity_calories", "float"), ("calories_bmr", "float"), ("calories_out", "float"),
        ("elevation", "float"), ("fairly_active_minutes", "float"), ("floors", "integer"),
        ("lightly_active_minutes", "float"), ("marginal_calories", "float"), ("sedentary_minutes", "float"),
        ("steps", "integer"), ("very_active_minutes", "float"), ("person_id", "integer"), ("src_id", "string")],
    "heart_rate_summary": [
        ("person_id", "integer"), ("date", "date"), ("zone_name", "string"), ("min_heart_rate", "integer"),
        ("max_heart_rate", "integer"), ("minute_in_zone", "integer"), ("calorie_count", "float"),
        ("src_id", "string")],
    "heart_rate_minute_level": [
        ("datetime", "datetime"), ("heart_rate_value", "integer"), ("person_id", "integer"), ("src_id", "string")],
    "steps_intraday": [("datetime", "datetime"), ("steps", "numeric"), ("person_id", "integer"), ("src_id", "string")],
    "sleep_daily_summary": [
        ("person_id", "integer"), ("sleep_date", "date"), ("is_main_sleep", "string"), ("minute_in_bed", "integer"),
        ("minute_asleep", "integer"), ("minute_after_wakeup", "integer"), ("minute_awake", "integer"),
        ("minute_restless", "integer"), ("minute_deep", "integer"), ("minute_light", "integer"),
        ("minute_rem", "integer"), ("minute_wake", "integer"), ("src_id", "string")],
    "sleep_level": [
        ("person_id", "integer"), ("sleep_date", "date"), ("is_main_sleep", "string"), ("level", "string"),
        ("start_datetime", "datetime"), ("duration_in_min", "float"), ("src_id", "string")],
    "device": [
        ("person_id", "integer"), ("device_id", "string"), ("device_date", "date"), ("battery", "string"),
        ("battery_level", "string"), ("device_version", "string"), ("device_type", "string"),
        ("last_sync_time", "datetime"), ("src_id", "string")],
}
BIGQUERY = {"integer": pl.Int64(), "float": pl.Float64(), "numeric": pl.Float64(), "string": pl.String(),
            "date": pl.Date(), "datetime": pl.Datetime("us")}


# The documented differences (sinks/tables.py): person_id holds the pseudonymous research_id (a
# string), and the device's battery level is an integer percentage (a string holding one in All of Us).
DIFFERENCES = {"person_id": pl.String(), "battery_level": pl.Int64()}


def expected_schema(table: str) -> dict[str, pl.DataType]:
    return {name: DIFFERENCES.get(name, BIGQUERY[kind]) for name, kind in ALL_OF_US[table]}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    summaries, batches, rid = cohort_records()
    DatasetWriter(Dataset(str(root))).apply(summaries, [*batches, *_device_batches(rid)])
    return root


def _device_batches(research_id: str) -> list[SampleBatch]:
    """A participant's devices as both vendors list them (the cohort's records have none)."""
    fitbit = fitbit_page("devices", orjson.dumps([
        {"id": "1", "deviceVersion": "Charge 6", "battery": "High", "batteryLevel": 90,
         "lastSyncTime": "2026-11-01T08:15:00.000", "type": "TRACKER"},
        {"id": "2", "deviceVersion": "Aria Air", "battery": "Empty", "lastSyncTime": "2026-11-02T07:00:00.000",
         "type": "SCALE"}]), detail=None)
    google = RawPage(provider=Provider.GOOGLE_HEALTH, data_type="paired-devices", date=None,
                     timezone="America/New_York", body=orjson.dumps({"pairedDevices": [
                         {"name": "users/me/pairedDevices/3", "batteryLevel": 40, "batteryStatus": "Medium",
                          "deviceType": "TRACKER", "deviceVersion": "Pixel Watch 3",
                          "lastSyncTime": "2026-11-01T13:00:00Z"}]}))
    return [b for page in (fitbit, google) for b in normalize(page, research_id, secret=SECRET).batches]


def test_device_rows_are_each_sync_with_its_battery(written: Path) -> None:
    rows = pl.read_parquet(written / "device" / "date=2026-11-01" / "data.parquet")
    assert rows.select("battery", "battery_level", "device_version", "last_sync_time", "src_id").sort(
        "last_sync_time").rows() == [("Medium", 40, "Pixel Watch 3", datetime(2026, 11, 1, 8), "google_health"),
                                     ("High", 90, "Charge 6", datetime(2026, 11, 1, 8, 15), "fitbit")]
    scale = pl.read_parquet(written / "device" / "date=2026-11-02" / "data.parquet")
    assert scale.select("battery", "battery_level", "device_type").rows() == [("Empty", None, "SCALE")]


@pytest.mark.parametrize("table", sorted(ALL_OF_US))
def test_written_files_have_the_all_of_us_columns_and_types(written: Path, table: str) -> None:
    files = sorted((written / table).glob("date=*/data.parquet"))
    assert files, f"no {table} files written"
    for file in files:
        schema = pl.read_parquet_schema(file)
        assert list(schema) == [name for name, _ in ALL_OF_US[table]]
        assert dict(schema) == expected_schema(table)
        assert pl.read_parquet(file).height > 0


def test_table_definitions_match_all_of_us() -> None:
    for name, columns in ALL_OF_US.items():
        assert TABLES[name].all_of_us
        assert dict(TABLES[name].schema) == expected_schema(name)
        assert [c for c, _ in columns] == list(TABLES[name].schema)


def test_every_table_has_a_key_of_its_own_columns_and_a_date_partition() -> None:
    for table in TABLES.values():
        assert set(table.key) <= set(table.schema) and "person_id" in table.key
        assert isinstance(table.schema[table.partition_by], pl.Date | pl.Datetime)
        assert all(c.meaning and c.provenance for c in table.columns)


def test_daily_summary_is_written_with_the_derived_fields(written: Path) -> None:
    rows = pl.read_parquet(written / "daily_summary" / "date=2026-11-01" / "data.parquet")
    assert rows.height == 4  # four participants on the date
    assert {"valid_day", "approx_resting_hr", "vendor_steps", "minutes_fat_burn"} <= set(rows.columns)
    assert rows["src_id"].null_count() == 0
