"""The root of the project's exception tree, and the reason codes of the dead-letter topic.

    WearablesError                 anything this project raises on purpose
    ├── ConfigurationError         a setting is missing or wrong; the message says which and how to fix it
    ├── DecodeError                a record or vendor page cannot be decoded; names the field and a Reason
    └── (runtime.errors)           KafkaUnreachable, EmbeddedBrokerError, BrokerBinaryMissing

Each package keeps its own small ``errors.py`` below this root so callers can catch exactly
what they handle; the CLI turns any ``WearablesError`` into a one-line message, and the
stream agents turn any ``DecodeError`` into a dead letter with its ``reason``.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ConfigurationError", "DecodeError", "Reason", "WearablesError"]


class WearablesError(Exception):
    """Base class for every error this project raises deliberately."""


class ConfigurationError(WearablesError):
    """A configuration value is missing, malformed or unsafe. The message names the variable."""


class Reason(StrEnum):
    """Why a record, page or sample was rejected: the ``reason`` of every dead letter.

    A closed vocabulary, so it is safe as a metric label.
    """

    # whole records or pages
    NOT_JSON = "not_json"
    BAD_ENVELOPE = "bad_envelope"
    UNSUPPORTED_SCHEMA = "unsupported_schema_version"
    UNKNOWN_DATA_TYPE = "unknown_data_type"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"
    BAD_KEY = "bad_key"
    BAD_TIME = "bad_time"
    INTERNAL_ERROR = "internal_error"
    DAY_EXPIRED = "day_expired"  # samples for a day older than the state retention
    PAGE_TOO_LARGE = "page_too_large"  # a page over the byte limit (streams/normalize/limits.py)
    TOO_DEEP = "too_deep"  # a page's JSON nested deeper than any vendor format
    # single samples
    NOT_A_NUMBER = "not_a_number"
    HR_OUT_OF_RANGE = "hr_out_of_range"
    NEGATIVE_STEPS = "negative_steps"
    STEPS_PER_MINUTE_TOO_HIGH = "steps_per_minute_too_high"
    NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"


class DecodeError(WearablesError):
    """Input that cannot be turned into our records.

    :param message: what is wrong, in words.
    :param reason: the dead-letter reason code.
    :param field: the path of the offending field, e.g. ``activities-heart-intraday.dataset[3].time``.
    """

    def __init__(self, message: str, *, reason: Reason, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.reason = reason
        self.field = field
