"""Google Health's wire facts: a scope for every data type we read, the filter grammar covers
them, and what we filter on is a member of each type's record kind."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.vendors import google_health_spec as spec


def test_every_data_type_has_a_filter_field_and_a_bound_format() -> None:
    assert set(spec.FILTER_FIELDS) == set(spec.BOUND_FORMATS) == set(spec.RECORD_KINDS) == set(spec.DATA_TYPES)
    literal = {spec.INSTANT: spec.INSTANT_FORMAT, spec.CIVIL: spec.CIVIL_FORMAT, spec.DATE: spec.DATE_FORMAT}
    for data_type, field in spec.FILTER_FIELDS.items():
        prefix = spec.filter_name(data_type) + "."
        assert field.startswith(prefix)  # snake_case in filters, kebab in URLs
        kind = spec.FILTER_MEMBERS[spec.RECORD_KINDS[data_type]][field.removeprefix(prefix)]  # a member of its kind
        assert spec.BOUND_FORMATS[data_type] == literal[kind]
    midnight = datetime(2026, 11, 20, tzinfo=UTC)
    assert f"{midnight:{spec.BOUND_FORMATS['steps']}}" == "2026-11-20T00:00:00Z"  # an RFC 3339 instant
    assert f"{midnight:{spec.BOUND_FORMATS['sleep']}}" == "2026-11-20T00:00:00"  # civil: no zone
    assert f"{midnight:{spec.BOUND_FORMATS['daily-resting-heart-rate']}}" == "2026-11-20"
    # the members users found missing: no interval.start_time for the daily resting rate, nor for sleep
    assert "interval.start_time" not in spec.FILTER_MEMBERS["daily"] | spec.FILTER_MEMBERS["sleep"]
    assert spec.OR_KINDS == {"sleep"}


def test_every_data_type_has_its_read_scope_and_the_consent_asks_for_their_union() -> None:
    assert set(spec.SCOPE_OF) == {*spec.DATA_TYPES, *spec.UNDATED_TYPES} == set(spec.PAGE_SIZES)
    assert set(spec.SCOPES) == set(spec.SCOPE_OF.values()) and len(spec.SCOPES) == len(set(spec.SCOPES))
    prefix = "https://www.googleapis.com/auth/googlehealth."
    assert spec.SCOPE_OF == {"steps": prefix + "activity_and_fitness.readonly",
                             "heart-rate": prefix + "health_metrics_and_measurements.readonly",
                             "daily-resting-heart-rate": prefix + "health_metrics_and_measurements.readonly",
                             "sleep": prefix + "sleep.readonly",  # sleep has a scope of its own
                             "paired-devices": prefix + "settings.readonly"}


def test_page_sizes_as_documented() -> None:
    assert spec.PAGE_SIZES["sleep"] == (25, 25) and spec.PAGE_SIZES["paired-devices"] == (5, 100)
    assert all(spec.PAGE_SIZES[t] == (1440, spec.MAX_PAGE_SIZE) for t in ("steps", "heart-rate"))
