"""The one seam to aiokafka for plain clients: configuration, producers, topic creation.

Faust builds its own clients from the same settings in ``streams/app.py``. The embedded
broker has no idempotent producer and no transactions, so producers here are configured for
at-least-once delivery (``acks=all``, no idempotence); dedup downstream makes replays harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from models.errors import ConfigurationError
from models.topics import TOPICS
from runtime.errors import KafkaUnreachable
from runtime.producer_queue import queue_full_batches
from runtime.settings import Settings

__all__ = [
    "TopicPlan",
    "check_reachable",
    "client_config",
    "delete_topics",
    "ensure_topics",
    "make_consumer",
    "make_producer",
    "resolve_bootstrap",
    "topic_plan",
]

logger = logging.getLogger(__name__)

queue_full_batches()  # every producer of the process, Faust's included (see runtime/producer_queue.py)

_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """A concrete topic to create: full name, partitions and config."""

    name: str
    partitions: int
    compacted: bool = False

    def config(self) -> dict[str, str]:
        return {"cleanup.policy": "compact" if self.compacted else "delete"}


def topic_plan(settings: Settings) -> list[TopicPlan]:
    """Every catalogue topic of DESIGN.md under this run's prefix and partition count."""
    return [
        TopicPlan(settings.topic(t.suffix), t.partitions or settings.partitions, t.compacted) for t in TOPICS
    ]


def resolve_bootstrap(settings: Settings) -> str:
    """The bootstrap servers to use: the configured cluster, else the running embedded broker.

    ``wearables broker`` records its address in ``<data_dir>/broker.json``; every other command
    started without ``KAFKA_BOOTSTRAP_SERVERS`` connects there.
    """
    if settings.kafka_bootstrap_servers:
        return settings.kafka_bootstrap_servers
    from runtime.broker import read_address_file  # local: broker pulls in subprocess machinery

    address = read_address_file(settings.data_dir)
    if address is None:
        raise ConfigurationError(
            "no Kafka configured: set KAFKA_BOOTSTRAP_SERVERS=host:port, or start the embedded "
            "broker first with `wearables broker` (or run everything with `wearables demo`)"
        )
    return address


def client_config(settings: Settings, bootstrap: str | None = None) -> dict[str, Any]:
    """Keyword arguments shared by every aiokafka client (address, TLS, SASL)."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap or resolve_bootstrap(settings),
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(
                str(settings.kafka_ssl_certfile),
                str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
            )
        config["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        assert settings.kafka_sasl_password is not None  # guaranteed by Settings validation
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return config


def make_producer(settings: Settings, bootstrap: str | None = None, **overrides: Any) -> AIOKafkaProducer:
    """An at-least-once producer (the embedded broker refuses idempotent producers)."""
    options: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 5,
        "max_batch_size": 1 if settings.kafka_single_record_batches else 1 << 20,
        "max_request_size": 8 << 20,
        "compression_type": None if settings.kafka_compression == "none" else settings.kafka_compression,
    }
    options.update(overrides)
    return AIOKafkaProducer(**client_config(settings, bootstrap), **options)


def make_consumer(
    settings: Settings, *topics: str, bootstrap: str | None = None, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer that starts from the earliest offset unless told otherwise."""
    options: dict[str, Any] = {
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        "session_timeout_ms": int(settings.kafka_session_timeout * 1000),
        "heartbeat_interval_ms": 1000,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **client_config(settings, bootstrap), **options)


async def check_reachable(settings: Settings, bootstrap: str | None = None) -> list[str]:
    """Fetch cluster metadata within the connect timeout; return the topic names.

    Raises KafkaUnreachable with what to do next instead of aiokafka's retry loop.
    """
    address = bootstrap or resolve_bootstrap(settings)
    admin = AIOKafkaAdminClient(**client_config(settings, address), request_timeout_ms=5000)
    try:
        with _quiet("aiokafka"):  # it logs each refused connection; our error says it once
            await asyncio.wait_for(admin.start(), settings.kafka_connect_timeout)
            return sorted(await asyncio.wait_for(admin.list_topics(), settings.kafka_connect_timeout))
    except (TimeoutError, KafkaConnectionError, KafkaError, OSError) as error:
        hint = (
            "check KAFKA_BOOTSTRAP_SERVERS (and KAFKA_SECURITY_PROTOCOL/SASL settings), or unset it "
            "to use the embedded broker"
            if settings.kafka_bootstrap_servers
            else "the embedded broker is not running: start it with `wearables broker`"
        )
        reason = {TimeoutError: "no answer", KafkaConnectionError: "connection failed"}.get(
            type(error), type(error).__name__
        )
        raise KafkaUnreachable(
            f"cannot reach Kafka at {address} within {settings.kafka_connect_timeout:g}s ({reason}); {hint}",
            bootstrap_servers=address,
        ) from None
    finally:
        await admin.close()


async def ensure_topics(
    settings: Settings, plans: Iterable[TopicPlan], bootstrap: str | None = None
) -> tuple[list[str], list[str]]:
    """Create the topics that do not exist yet. Idempotent.

    Returns (created, already_present). Partition counts of existing topics are left alone:
    the embedded broker cannot add partitions, and on Kafka that is an operator's decision.
    """
    plans = list(plans)
    address = bootstrap or resolve_bootstrap(settings)
    existing = set(await check_reachable(settings, address))
    missing = [p for p in plans if p.name not in existing]
    created: list[str] = []
    if missing:
        admin = AIOKafkaAdminClient(**client_config(settings, address), request_timeout_ms=15000)
        try:
            await admin.start()
            response = await admin.create_topics(
                [
                    NewTopic(p.name, p.partitions, settings.replication_factor, topic_configs=p.config())
                    for p in missing
                ]
            )
        finally:
            await admin.close()
        for name, code, message in _topic_errors(response):
            if code == 0:
                created.append(name)
            elif code != _TOPIC_ALREADY_EXISTS:  # lost a race with another process: fine
                raise KafkaUnreachable(
                    f"could not create topic {name}: error {code} {message or ''}".strip(),
                    bootstrap_servers=address,
                )
    present = [p.name for p in plans if p.name not in created]
    logger.info("topics: %d created, %d already present", len(created), len(present))
    return created, present


async def delete_topics(settings: Settings, names: Iterable[str], bootstrap: str | None = None) -> None:
    """Delete topics (a benchmark's scratch topics); missing ones are fine."""
    admin = AIOKafkaAdminClient(**client_config(settings, bootstrap or resolve_bootstrap(settings)),
                                request_timeout_ms=15000)
    try:
        await admin.start()
        await admin.delete_topics(list(names))
    finally:
        await admin.close()


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    rows = []
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        rows.append((name, code, message))
    return rows
