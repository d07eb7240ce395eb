from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from runtime.logging import RedactingFilter, RedactingFormatter, redact, register_secrets, setup_logging


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("linked P1234567890 to fitbit", "1234567890"),
        ("Authorization: Bearer eyJhbGciOi.abc-def_ghi", "eyJhbGciOi"),
        ('{"access_token": "tok-123", "refresh_token":"ref-456"}', "tok-123"),
        ("refresh_token=ref-456&client_secret=shh", "ref-456"),
        ("code_verifier=verif789", "verif789"),
        ("purged R0123456789abcdef0123 from the dataset", "0123456789abcdef0123"),
    ],
)
def test_identifiers_and_tokens_are_redacted(text: str, leaked: str) -> None:
    assert leaked not in redact(text)


def test_plain_coordinates_are_left_alone() -> None:
    text = "batch of 120 events from wearables.raw.fitbit[3]@4521"
    assert redact(text) == text


def test_filter_rewrites_formatted_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "participant %s linked", ("P1234567890",), None)
    assert RedactingFilter().filter(record)
    assert "1234567890" not in record.getMessage()


# The probe strings of the security audit (finding 5), each with what must not survive.
@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("file sleep_P1234567890.json", ["1234567890"]),
        ("participant P12345678901 has 11 digits", ["12345678901"]),
        ("key participantP1234567890 glued to text", ["1234567890"]),
        ("lower-cased file p1234567890.json", ["1234567890"]),
        ("fetch failed for R225f59c230f585b6fa9a", ["225f59c230f585b6fa9a"]),
        ("wrote daily_R225f59c230f585b6fa9a.parquet", ["225f59c230f585b6fa9a"]),
        ("user users/113456789012345678901 unknown", ["113456789012345678901"]),
        ('notification {"ownerId": "4K9Z2B", "collectionType": "activities"}', ["4K9Z2B"]),
        ("Authorization: Bearer:ya29.secret2", ["ya29.secret2"]),
        ("headers {'Authorization': 'Basic ZGVtbzpzZWNyZXQ='}", ["ZGVtbzpzZWNyZXQ"]),
        ("token response {'access_token': 'AT-dict-secret', 'refresh_token': 'RT-dict-secret'}",
         ["AT-dict-secret", "RT-dict-secret"]),
        ("body b'{\\\"access_token\\\": \\\"AT-escaped\\\"}'", ["AT-escaped"]),
        ("revoke form token=RT-form-secret&token_type_hint=refresh_token", ["RT-form-secret"]),
        ("GET /link/callback?code=AUTHCODE-secret-123&state=s1", ["AUTHCODE-secret-123"]),
        ("GET /webhooks/fitbit?verify=0123456789abcdef0123", ["0123456789abcdef0123"]),
        ("cannot reach postgresql://vault:Sup3rS3cretPw@db.internal/vault", ["Sup3rS3cretPw"]),
    ],
)
def test_the_audit_probe_strings_are_redacted(text: str, leaked: list[str]) -> None:
    cleaned = redact(text)
    assert [secret for secret in leaked if secret in cleaned] == []


@pytest.mark.parametrize("text", [
    "answered with status_code=500 after 3 attempts",
    "the child exited with code=2",
    '{"error": {"code": 401, "status": "UNAUTHENTICATED"}}',
    '{"token_type": "Bearer", "expires_in": 28800}',
    "GET users/me/dataTypes/steps",
])
def test_short_codes_and_non_secrets_stay_readable(text: str) -> None:
    assert redact(text) == text


def test_registered_secret_values_are_redacted_literally() -> None:
    register_secrets(["vendor-secret-value-42", "short"])
    assert redact("sent client secret vendor-secret-value-42 to the vendor") == \
        "sent client secret [redacted] to the vendor"
    assert redact("a short word") == "a short word"  # too short to redact literally without mangling logs


def _fail_with_identifiers() -> None:
    raise RuntimeError("P1234567890 R225f59c230f585b6fa9a refresh_token=RT-tb-secret "
                       "Authorization: Bearer AT-tb-secret")


_IN_THE_TRACEBACK = ["1234567890", "225f59c230f585b6fa9a", "RT-tb-secret", "AT-tb-secret"]


@pytest.mark.parametrize("redacting", ["filter", "formatter"])
def test_logger_exception_tracebacks_are_redacted(redacting: str) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    if redacting == "filter":  # the traceback a plain formatter renders is the one the filter cached, redacted
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(RedactingFilter())
    else:
        handler.setFormatter(RedactingFormatter("%(message)s"))
    logger = logging.getLogger(f"tests.redaction.{redacting}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            _fail_with_identifiers()
        except RuntimeError:
            logger.exception("fetch for %s failed", "P1234567890")
        logger.warning("where P1234567890 was seen", stack_info=True)
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "Traceback (most recent call last)" in written and "RuntimeError" in written
    assert "Stack (most recent call last)" in written
    assert [secret for secret in _IN_THE_TRACEBACK if secret in written] == []


@pytest.fixture
def restored_root() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, filters, level = list(root.handlers), list(root.filters), root.level
    yield root
    root.handlers[:], root.filters[:] = handlers, filters
    root.setLevel(level)


def test_setup_logging_redacts_on_the_root_logger_and_its_handler(restored_root: logging.Logger,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", secrets=["configured-secret-0042"])
    assert any(isinstance(f, RedactingFilter) for f in restored_root.filters)
    # a handler a library adds later, without our filter: records logged on the root logger reach it redacted
    foreign = io.StringIO()
    restored_root.addHandler(logging.StreamHandler(foreign))
    logging.getLogger().warning("root saw P1234567890 and configured-secret-0042")
    try:
        _fail_with_identifiers()
    except RuntimeError:
        logging.getLogger("tests.redaction.module").exception("module logger")
    ours = capsys.readouterr().err
    assert "root saw P********** and [redacted]" in foreign.getvalue()
    assert "module logger" in ours and "Traceback" in ours
    assert [s for s in [*_IN_THE_TRACEBACK, "configured-secret-0042"] if s in ours + foreign.getvalue()] == []
