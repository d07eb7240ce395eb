"""Records, identifiers and the topic catalogue shared by every layer.

This package imports no other project package and no Kafka, Faust or aiohttp code.
"""

from models.errors import ConfigurationError, WearablesError
from models.providers import Provider
from models.topics import TOPICS, TopicSpec, topic_name

__all__ = ["TOPICS", "ConfigurationError", "Provider", "TopicSpec", "WearablesError", "topic_name"]
