"""The exception tree's root (models/errors.py): what each error carries and what it is a kind of."""

from __future__ import annotations

import pytest

from models.errors import ConfigurationError, DecodeError, Reason, WearablesError


def test_decode_error_carries_its_reason_and_field_and_names_the_field_first() -> None:
    error = DecodeError("expected a number", reason=Reason.NOT_A_NUMBER, field="dataset[3].value")
    assert (error.reason, error.field) == (Reason.NOT_A_NUMBER, "dataset[3].value")
    assert str(error) == "dataset[3].value: expected a number"


def test_decode_error_without_a_field_is_just_its_message() -> None:
    error = DecodeError("page is not JSON", reason=Reason.NOT_JSON)
    assert (error.field, str(error)) == (None, "page is not JSON")


def test_every_deliberate_error_is_a_wearables_error() -> None:
    assert issubclass(ConfigurationError, WearablesError) and issubclass(DecodeError, WearablesError)
    assert not issubclass(DecodeError, ConfigurationError) and not issubclass(ConfigurationError, DecodeError)
    with pytest.raises(WearablesError, match="WEARABLES_PARTITIONS"):
        raise ConfigurationError("WEARABLES_PARTITIONS='lots' is not a number")


def test_reasons_are_a_closed_vocabulary_of_unique_snake_case_labels() -> None:
    values = [reason.value for reason in Reason]
    assert len(values) == len(set(values)) == 17
    assert Reason("page_too_large") is Reason.PAGE_TOO_LARGE and Reason("too_deep") is Reason.TOO_DEEP
    assert all(value.replace("_", "").isalpha() and value.islower() for value in values)
    assert Reason("not_json") is Reason.NOT_JSON and Reason.UNSUPPORTED_SCHEMA == "unsupported_schema_version"
    with pytest.raises(ValueError, match="weight"):
        Reason("weight")
