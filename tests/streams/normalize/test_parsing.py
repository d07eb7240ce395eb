"""Reading vendor JSON leniently (streams/normalize/parsing.py)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from models.errors import DecodeError, Reason
from streams.normalize.parsing import (
    as_list,
    as_mapping,
    as_number,
    as_text,
    json_object,
    load_json,
    local_datetimes,
    numbers,
    parse_duration_s,
    parse_iso_date,
)


def test_a_body_that_is_not_json_names_the_reason() -> None:
    assert load_json(b'{"a": 1}') == {"a": 1}
    with pytest.raises(DecodeError) as info:
        load_json(b"{")
    assert info.value.reason is Reason.NOT_JSON
    with pytest.raises(DecodeError) as info:
        json_object([1])
    assert (info.value.reason, info.value.field) == (Reason.BAD_FIELD, "$")


def test_numbers_accept_numeric_strings_and_null_the_rest() -> None:
    assert numbers([1, 2.5, 3]).to_list() == [1.0, 2.5, 3.0]
    assert numbers(["12", "x"]).to_list() == [12.0, None]
    assert numbers([1, "2", None, True, {"a": 1}]).to_list() == [1.0, 2.0, None, None, None]
    assert (as_number("7"), as_number(False), as_number([1])) == (7.0, None, None)


def test_durations_dates_and_local_datetimes() -> None:
    assert (parse_duration_s("920.400s"), parse_duration_s("-18000s"), parse_duration_s("5")) == (920.4, -18000.0, None)
    assert parse_iso_date("2026-11-03T01:00:00", "dateOfSleep") == date(2026, 11, 3)
    with pytest.raises(DecodeError) as info:
        parse_iso_date(5, "dateOfSleep")
    assert info.value.field == "dateOfSleep"
    assert local_datetimes(["2026-11-02T23:30:00.000", "junk", 5, None]).to_list() == [
        datetime(2026, 11, 2, 23, 30), None, None, None]


def test_optional_parts_of_the_wrong_type_count_as_absent() -> None:
    assert (as_mapping({"a": 1}), as_mapping([1]), as_mapping(None)) == ({"a": 1}, {}, {})
    assert (as_list([1]), as_list({"a": 1}), as_list("x")) == ([1], [], [])


def test_as_text_keeps_vendor_words_and_never_writes_none() -> None:
    assert [as_text(v) for v in ("High", 7, None, [], {"a": 1}, True)] == ["High", "7", None, None, None, "True"]
