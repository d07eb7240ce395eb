"""Process plumbing shared by every command: settings, Kafka clients, the embedded broker,
metrics and logging. Imports only ``models`` from this project."""

from runtime.errors import BrokerBinaryMissing, EmbeddedBrokerError, KafkaUnreachable
from runtime.settings import Settings, load_settings

__all__ = ["BrokerBinaryMissing", "EmbeddedBrokerError", "KafkaUnreachable", "Settings", "load_settings"]
