"""Google Health's wire facts: the filter grammar covers every data type we read."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.vendors import google_health_spec as spec


def test_every_data_type_has_a_filter_field_and_a_bound_format() -> None:
    assert set(spec.FILTER_FIELDS) == set(spec.BOUND_FORMATS) == set(spec.DATA_TYPES)
    for data_type, field in spec.FILTER_FIELDS.items():
        assert field.startswith(data_type.replace("-", "_") + ".")  # snake_case in filters, kebab in URLs
    midnight = datetime(2026, 11, 20, tzinfo=UTC)
    assert f"{midnight:{spec.BOUND_FORMATS['steps']}}" == "2026-11-20T00:00:00Z"  # an RFC 3339 instant
    assert f"{midnight:{spec.BOUND_FORMATS['sleep']}}" == "2026-11-20T00:00:00"  # civil: no zone
