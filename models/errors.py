"""The root of the project's exception tree.

    WearablesError                 anything this project raises on purpose
    ├── ConfigurationError         a setting is missing or wrong; the message says which and how to fix it
    └── (runtime.errors)           KafkaUnreachable, EmbeddedBrokerError, BrokerBinaryMissing

Each package keeps its own small ``errors.py`` below this root so callers can catch exactly
what they handle; the CLI turns any ``WearablesError`` into a one-line message.
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "WearablesError"]


class WearablesError(Exception):
    """Base class for every error this project raises deliberately."""


class ConfigurationError(WearablesError):
    """A configuration value is missing, malformed or unsafe. The message names the variable."""
