"""Log set-up, with a filter that redacts identifiers and tokens from every record.

Code should log coordinates (topic, partition, offset, counts), never payloads. The filter is
the safety net for the day someone forgets: participant IDs (``P`` + 10 digits, also inside
file names such as ``sleep_P1234567890.json``), research IDs (``R`` + 20 hex digits), bearer
and Authorization values, OAuth fields (tokens, codes, verifiers, secrets; in JSON, Python
reprs, URLs and forms), passwords in URLs, and the configured secrets themselves
(:func:`register_secrets`, called by ``load_settings``) are replaced before a record reaches a
handler, rendered tracebacks and stack traces included.

Vendor user IDs have no fixed shape: only their keyed forms (``"ownerId": ...``,
``users/<id>``) are caught here, so they must be kept out of messages at the source.

Use::

    setup_logging("INFO", secrets=["s3cret-value"])
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

__all__ = ["RedactingFilter", "RedactingFormatter", "redact", "register_secrets", "setup_logging"]

_HIDDEN = "[redacted]"
# A quote, possibly escaped (JSON inside a string repr), around a key or a value.
_Q = r"(?:\\?[\"'])?"
_VALUE = r"[^\s\"'\\,&;}\]]+"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # participant IDs: P + 10 digits, also after "_" or text (file names) and with more digits glued on;
    # a lower-case p only where it starts a word (a file name lowered by some tool)
    (re.compile(r"(?<!\d)P\d{10,}|(?<![A-Za-z0-9])p\d{10,}"), "P**********"),
    # research IDs (models/ids.py), also inside file names and keys
    (re.compile(r"(?<![A-Za-z0-9])R[0-9a-fA-F]{20}(?![0-9a-fA-F])"), "R********************"),
    # passwords in URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@\"']*:)[^\s/@\"']+@"), rf"\1{_HIDDEN}@"),
    # an Authorization header (or field) with whatever scheme: Bearer, Basic, Google's static token
    (re.compile(rf"(?i)(\bauthorization{_Q}\s*[:=]\s*{_Q})[^\"'\r\n,}}]+"), rf"\1{_HIDDEN}"),
    (re.compile(r"(?i)\bbearer[:\s]\s*[A-Za-z0-9._~+/=-]+"), f"Bearer {_HIDDEN}"),
    # keyed secrets in JSON, Python reprs, forms and query strings ("access_token": "...", token=...)
    (re.compile(rf"(?i)(?<![A-Za-z0-9])((?:access_|refresh_|id_)?token{_Q}\s*[:=]\s*{_Q}){_VALUE}"),
     rf"\1{_HIDDEN}"),
    (re.compile(rf"(?i)((?:client_secret|code_verifier|password|verify_code|webhook_token){_Q}\s*[:=]\s*{_Q})"
                rf"{_VALUE}"), rf"\1{_HIDDEN}"),
    # OAuth authorization codes and Fitbit's subscriber verify code in URLs and forms (not status_code=500)
    (re.compile(r"(?i)(?<![A-Za-z0-9_])((?:code|verify)=)[^\s\"'&#,;]{6,}"), rf"\1{_HIDDEN}"),
    # vendor user IDs where they are keyed: Fitbit ownerId / encodedId / user_id, Google users/<id>
    (re.compile(rf"(?i)((?:owner_?id|encoded_?id|user_?id|health_?user_?id){_Q}\s*[:=]\s*{_Q}){_VALUE}"),
     rf"\1{_HIDDEN}"),
    (re.compile(r"\busers/(?!me\b)[A-Za-z0-9_-]{6,}"), f"users/{_HIDDEN}"),
)

# Configured secret values, replaced literally (longest first, so a secret containing another goes whole).
_MIN_LITERAL = 8  # shorter values are too likely to be ordinary words; the patterns above still apply
_literals: tuple[str, ...] = ()
_literals_lock = threading.Lock()


def register_secrets(values: Iterable[str]) -> None:
    """Redact these values literally from every later record (the configured secrets)."""
    global _literals  # one process-wide list, read by every handler's filter
    fresh = {value.strip() for value in values if len(value.strip()) >= _MIN_LITERAL}
    with _literals_lock:
        _literals = tuple(sorted(fresh.union(_literals), key=len, reverse=True))


def redact(text: str) -> str:
    """Text with participant and research IDs, tokens and configured secrets replaced."""
    for secret in _literals:
        if secret in text:
            text = text.replace(secret, _HIDDEN)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message, rendered traceback and stack trace through :func:`redact`.

    The traceback is rendered here (and cached on the record as ``exc_text``, which every
    ``logging.Formatter`` reuses), so handlers with their own formatters get the redacted one too.
    """

    _renderer = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._renderer.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (message, traceback, stack) goes through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO", *, secrets: Iterable[str] = ()) -> None:
    """Configure the root logger once: one line per record, redacted.

    :param level: the root level (``WEARABLES_LOG_LEVEL``).
    :param secrets: values to redact literally, in addition to those already registered.
    """
    register_secrets(secrets)
    root = logging.getLogger()
    root.setLevel(level)
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # On the root logger too, for records logged on it directly that reach a handler added later by a
    # library. (A logger's filters do not see records propagated from child loggers: those are
    # redacted by the handler's filter and formatter above.)
    if not any(isinstance(f, RedactingFilter) for f in root.filters):
        root.addFilter(RedactingFilter())
    # aiokafka and Faust are chatty at INFO about every rebalance step; aiosqlite logs every
    # statement with its parameters (research IDs) at DEBUG.
    for noisy in ("aiokafka", "faust", "mode", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
