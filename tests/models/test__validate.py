"""The field readers (models/_validate.py): a value of the wrong type is a DecodeError that
names the field by its full path and gives the dead-letter reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from models._validate import load_object, opt_str, req, req_float, req_int, req_list, req_mapping, req_str
from models.errors import DecodeError, Reason

RECORD: dict[str, Any] = {"name": "R1", "empty": "", "count": 7, "big": "-9007199254740993", "flag": True,
                          "ratio": 0.5, "text_number": "2.5", "items": [1, 2], "inner": {"a": 1}, "none": None}


def test_readers_return_the_values_of_well_typed_fields() -> None:
    assert req(RECORD, "inner") == {"a": 1}
    assert req_str(RECORD, "name") == "R1"
    assert opt_str(RECORD, "none") is None and opt_str(RECORD, "absent") is None and opt_str(RECORD, "name") == "R1"
    assert req_int(RECORD, "count") == 7
    assert req_int(RECORD, "big") == -9007199254740993  # int64 as a string, as Google APIs send them
    assert req_float(RECORD, "ratio") == 0.5 and req_float(RECORD, "count") == 7.0
    assert req_float(RECORD, "text_number") == 2.5
    assert req_list(RECORD, "items") == [1, 2]
    assert req_mapping(RECORD, "inner") == {"a": 1}


@pytest.mark.parametrize(("reader", "key", "reason"), [
    (req, "absent", Reason.MISSING_FIELD),
    (req, "none", Reason.MISSING_FIELD),
    (req_str, "count", Reason.BAD_FIELD),
    (req_str, "empty", Reason.BAD_FIELD),
    (opt_str, "items", Reason.BAD_FIELD),
    (req_int, "flag", Reason.BAD_FIELD),  # a boolean is not an integer, though Python says so
    (req_int, "ratio", Reason.BAD_FIELD),
    (req_int, "name", Reason.BAD_FIELD),
    (req_float, "flag", Reason.BAD_FIELD),
    (req_float, "name", Reason.BAD_FIELD),
    (req_float, "items", Reason.BAD_FIELD),
    (req_list, "inner", Reason.BAD_FIELD),
    (req_mapping, "items", Reason.BAD_FIELD),
    (req_str, "absent", Reason.MISSING_FIELD),
])
def test_a_wrong_or_missing_field_names_its_path_and_reason(reader: Callable[..., Any], key: str,
                                                            reason: Reason) -> None:
    with pytest.raises(DecodeError) as info:
        reader(RECORD, key, "dataset[3].")
    assert (info.value.field, info.value.reason) == (f"dataset[3].{key}", reason)
    assert str(info.value).startswith(f"dataset[3].{key}: ")


def test_reading_a_field_of_something_that_is_not_an_object_names_the_parent() -> None:
    with pytest.raises(DecodeError) as info:
        req_str([1, 2], "name", "sleep[0]")  # type: ignore[arg-type]
    assert (info.value.field, info.value.reason) == ("sleep[0]", Reason.BAD_FIELD)
    with pytest.raises(DecodeError) as info:
        req("text", "name")  # type: ignore[arg-type]
    assert info.value.field == "$"


@pytest.mark.parametrize(("data", "reason", "message"), [
    (b"<html>502</html>", Reason.NOT_JSON, "fetch request is not JSON"),
    (b"[1, 2]", Reason.BAD_ENVELOPE, "fetch request is not an object"),
])
def test_load_object_says_which_record_it_was_meant_to_be(data: bytes, reason: Reason, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        load_object(data, "fetch request")
    assert (info.value.reason, str(info.value), info.value.field) == (reason, message, None)


def test_load_object_returns_the_decoded_object() -> None:
    assert load_object(b'{"v": 1, "ids": ["R1"]}', "page") == {"v": 1, "ids": ["R1"]}
