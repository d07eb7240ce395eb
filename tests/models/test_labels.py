"""The label vocabulary (models/labels.py): builders and parsers agree, and the vectorised
patterns parse as the scalar parsers do. That the normalizers write only these labels is a
contract test (tests/streams/normalize/test_contract.py)."""

from __future__ import annotations

import polars as pl
import pytest

from models import labels
from models.samples import Metric


@pytest.mark.parametrize("name", ["Peak", "Fat Burn", "Out of Range", "zone.with.dots"])
@pytest.mark.parametrize("field", labels.HR_ZONE_FIELDS)
def test_hr_zone_labels_parse_back(name: str, field: str) -> None:
    label = labels.hr_zone(name, field)
    assert labels.parse_hr_zone(label) == (name, field)
    assert labels.is_valid_label(Metric.VENDOR_DAILY, label)
    frame = pl.DataFrame({"label": [label]}).select(
        name=pl.col("label").str.extract(labels.HR_ZONE_PATTERN, 1),
        field=pl.col("label").str.extract(labels.HR_ZONE_PATTERN, 2))
    assert frame.row(0) == (name, field)  # the pattern the sink uses agrees with parse_hr_zone


def test_spelled_labels() -> None:
    assert labels.hr_zone("Fat Burn", labels.ZONE_MINUTES) == "hr_zone.Fat Burn.minutes"
    assert labels.stage_minutes("deep") == "stage.deep.minutes"
    assert labels.short_level("wake") == "short:wake" and labels.short_level("wake").startswith(labels.SHORT_PREFIX)
    assert (labels.MINUTES_ASLEEP, labels.TIME_IN_BED, labels.STEPS) == ("minutes_asleep", "time_in_bed", "steps")


@pytest.mark.parametrize("label", ["steps", "hr_zone", "hr_zone.Peak", "hr_zone..", "stage.deep.minutes"])
def test_what_is_not_a_zone_label(label: str) -> None:
    assert labels.parse_hr_zone(label) is None


def test_stage_minutes_parse_back() -> None:
    assert labels.parse_stage_minutes(labels.stage_minutes("rem")) == "rem"
    assert labels.parse_stage_minutes(labels.MINUTES_ASLEEP) is None


@pytest.mark.parametrize(("metric", "label", "valid"), [
    (Metric.VENDOR_DAILY, labels.CALORIES_OUT, True), (Metric.VENDOR_DAILY, labels.MINUTES_ASLEEP, False),
    (Metric.VENDOR_DAILY, "calories", False), (Metric.VENDOR_SLEEP, labels.TIME_IN_BED, True),
    (Metric.VENDOR_SLEEP, labels.stage_minutes("light"), True), (Metric.VENDOR_SLEEP, labels.STEPS, False),
    (Metric.SLEEP_STAGE, "rem", True), (Metric.SLEEP_STAGE, labels.short_level("wake"), True),
    (Metric.SLEEP_STAGE, labels.SHORT_PREFIX, False), (Metric.SLEEP_STAGE, "", False),
    (Metric.STEPS, labels.STEPS, False), (Metric.HEART_RATE, "", False),
])
def test_is_valid_label(metric: Metric, label: str, valid: bool) -> None:
    assert labels.is_valid_label(metric, label) is valid


def test_vocabularies_do_not_overlap_and_the_activity_figures_are_daily_figures() -> None:
    assert not labels.DAILY_FIGURES & labels.SLEEP_FIGURES
    assert set(labels.ACTIVITY_FIGURES) <= labels.DAILY_FIGURES and labels.STEPS not in labels.ACTIVITY_FIGURES
    assert set(labels.AWAKE_LEVELS) == {"wake", "awake", "restless"}



@pytest.mark.parametrize(("kind", "stage", "level"), [
    ("STAGES", "AWAKE", "wake"), ("STAGES", "LIGHT", "light"), ("STAGES", "DEEP", "deep"), ("STAGES", "REM", "rem"),
    ("CLASSIC", "AWAKE", "awake"), ("CLASSIC", "ASLEEP", "asleep"), ("CLASSIC", "RESTLESS", "restless"),
    ("stages", "awake", "wake"),  # case as sent does not matter
    ("STAGES", "ASLEEP", "asleep"), ("CLASSIC", "LIGHT", "light"), ("NEW_KIND", "AWAKE", "awake"),  # outside a table
])
def test_google_stage_types_become_the_fitbit_levels_of_the_session_type(kind: str, stage: str, level: str) -> None:
    assert labels.google_sleep_level(kind, stage) == level
    assert labels.is_valid_label(Metric.SLEEP_STAGE, level)


def test_both_google_tables_land_in_levels_the_awake_set_knows() -> None:
    awake = {labels.google_sleep_level(kind, "AWAKE") for kind in labels.GOOGLE_SLEEP_LEVELS}
    assert awake == {"wake", "awake"} and awake <= set(labels.AWAKE_LEVELS)


@pytest.mark.parametrize(("label", "valid"), [
    ("D0123456789abcdef", True), ("D0123456789ABCDEF", False), ("0123456789abcdef", False),
    ("D0123456789abcde", False), ("D0123456789abcdef0", False), ("", False),
])
def test_device_labels_are_pseudonyms(label: str, valid: bool) -> None:
    assert labels.is_valid_label(Metric.DEVICE, label) is valid
