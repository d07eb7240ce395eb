"""Log set-up, with a filter that redacts identifiers and tokens from every record.

Code should log coordinates (topic, partition, offset, counts), never payloads. The filter is
the safety net for the day someone forgets: participant IDs (``P`` + 10 digits), research IDs
(``R`` + 20 hex digits), bearer tokens
and OAuth token fields are replaced before a record reaches any handler.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "redact", "setup_logging"]

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bP\d{10}\b"), "P**********"),
    (re.compile(r"\bR[0-9a-f]{20}\b"), "R********************"),  # research IDs (models/ids.py)
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"(?i)(\"?(?:access|refresh|id)_token\"?\s*[:=]\s*\"?)[^\s\",&}]+"), r"\1[redacted]"),
    (re.compile(r"(?i)((?:client_secret|code_verifier|password)\"?\s*[:=]\s*\"?)[^\s\",&}]+"), r"\1[redacted]"),
)


def redact(text: str) -> str:
    """Text with participant IDs and secrets replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's rendered message through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once: one line per record, redacted."""
    root = logging.getLogger()
    root.setLevel(level)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # aiokafka and Faust are chatty at INFO about every rebalance step; aiosqlite logs every
    # statement with its parameters (research IDs) at DEBUG.
    for noisy in ("aiokafka", "faust", "mode", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
