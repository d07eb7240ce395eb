"""The one seam to aiokafka: the connection (address, TLS, SASL), producers, consumers, topics.

:class:`KafkaConnection` and :class:`ProducerOptions` are the only place that turns settings
into client options, rendered for aiokafka (``.aiokafka()``) and for Faust (``.faust()``), so
the workers and the plain clients cannot disagree about TLS, SASL or batching. The embedded
broker has no idempotent producer and no transactions, so producers are configured for
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
from runtime.settings import KafkaSettings, Settings

__all__ = [
    "KafkaConnection",
    "ProducerOptions",
    "TopicPlan",
    "check_reachable",
    "client_config",
    "connection",
    "delete_topics",
    "ensure_topics",
    "make_consumer",
    "make_producer",
    "resolve_bootstrap",
    "topic_plan",
]

logger = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """A concrete topic to create: full name, partitions and config."""

    name: str
    partitions: int
    compacted: bool = False
    kept_forever: bool = False

    def config(self) -> dict[str, str]:
        config = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if self.kept_forever:
            config["retention.ms"] = "-1"
        return config


def topic_plan(settings: Settings) -> list[TopicPlan]:
    """Every catalogue topic (models/topics.py) under this run's prefix and partition count."""
    return [
        TopicPlan(settings.topic(t.suffix), t.partitions or settings.kafka.partitions, t.compacted, t.kept_forever)
        for t in TOPICS
    ]


def resolve_bootstrap(settings: Settings) -> str:
    """The bootstrap servers to use: the configured cluster, else the running embedded broker.

    ``wearables broker`` records its address in ``<data_dir>/broker.json``; every other command
    started without ``KAFKA_BOOTSTRAP_SERVERS`` connects there.
    """
    if settings.kafka.bootstrap_servers:
        return settings.kafka.bootstrap_servers
    from runtime.broker import read_address_file  # local: broker pulls in subprocess machinery

    address = read_address_file(settings.data_dir)
    if address is None:
        raise ConfigurationError(
            "no Kafka configured: set KAFKA_BOOTSTRAP_SERVERS=host:port, or start the embedded "
            "broker first with `wearables broker` (or run everything with `wearables demo`)"
        )
    return address


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """How to reach the cluster: bootstrap servers plus TLS and SASL, for every Kafka client.

    :param bootstrap: ``host:port[,host:port]`` (see :func:`resolve_bootstrap`).
    :param kafka: the Kafka section of the settings (security protocol, SASL, TLS files).

        KafkaConnection(bootstrap, settings.kafka).aiokafka()   # kwargs for AIOKafka* clients
        KafkaConnection(bootstrap, settings.kafka).faust()      # broker_credentials for faust.App
    """

    bootstrap: str
    kafka: KafkaSettings

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of ``SSL``/``SASL_SSL`` (None otherwise); a file it cannot use is a
        one-line ConfigurationError naming its variable."""
        if self.kafka.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        cafile, certfile, keyfile = self.kafka.ssl_cafile, self.kafka.ssl_certfile, self.kafka.ssl_keyfile
        try:
            context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        except (OSError, ssl.SSLError) as error:
            raise ConfigurationError(f"KAFKA_SSL_CAFILE={str(cafile)!r}: cannot use it as the CA "
                                     f"({_file_problem(error)}); give the PEM file of the CA certificate that "
                                     "signed the broker's certificate") from None
        if certfile:
            try:
                context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
            except (OSError, ssl.SSLError) as error:
                files = f"KAFKA_SSL_CERTFILE={str(certfile)!r}"
                files += f", KAFKA_SSL_KEYFILE={str(keyfile)!r}" if keyfile else ""
                raise ConfigurationError(f"{files}: cannot load the client certificate and key "
                                         f"({_file_problem(error)}); give the PEM certificate and its private key "
                                         "(KAFKA_SSL_KEYFILE when the key is not in the certificate's file)") from None
        return context

    def _sasl(self) -> tuple[str, str, str] | None:
        if not self.kafka.security_protocol.startswith("SASL"):
            return None
        # all three are guaranteed by KafkaSettings validation for SASL_*
        assert self.kafka.sasl_mechanism and self.kafka.sasl_username and self.kafka.sasl_password
        return self.kafka.sasl_mechanism, self.kafka.sasl_username, self.kafka.sasl_password.get_secret_value()

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments shared by every aiokafka client (address, TLS, SASL)."""
        config: dict[str, Any] = {"bootstrap_servers": self.bootstrap,
                                  "security_protocol": self.kafka.security_protocol}
        context = self.ssl_context()
        if context is not None:
            config["ssl_context"] = context
        sasl = self._sasl()
        if sasl is not None:
            config["sasl_mechanism"], config["sasl_plain_username"], config["sasl_plain_password"] = sasl
        return config

    def faust(self) -> Any:
        """Faust's ``broker_credentials`` (``faust.SASLCredentials``/``SSLCredentials``), or None."""
        import faust  # local: only workers need Faust, and it is slow to import

        context, sasl = self.ssl_context(), self._sasl()
        if sasl is not None:
            mechanism, username, password = sasl
            return faust.SASLCredentials(username=username, password=password, mechanism=mechanism,
                                         ssl_context=context)
        return faust.SSLCredentials(context) if context is not None else None


@dataclass(frozen=True, slots=True)
class ProducerOptions:
    """Producer batching and delivery, the same for aiokafka producers and Faust's."""

    max_batch_size: int
    compression: str | None
    linger_ms: int = 5
    max_request_size: int = 8 << 20

    @classmethod
    def of(cls, kafka: KafkaSettings) -> ProducerOptions:
        return cls(max_batch_size=1 if kafka.single_record_batches else 1 << 20,
                   compression=None if kafka.compression == "none" else kafka.compression)

    def aiokafka(self) -> dict[str, Any]:
        return {"acks": "all", "enable_idempotence": False, "linger_ms": self.linger_ms,
                "max_batch_size": self.max_batch_size, "max_request_size": self.max_request_size,
                "compression_type": self.compression}

    def faust(self) -> dict[str, Any]:
        return {"producer_acks": -1, "producer_linger": self.linger_ms / 1000,
                "producer_max_request_size": self.max_request_size,
                "producer_max_batch_size": self.max_batch_size, "producer_compression_type": self.compression}


def connection(settings: Settings, bootstrap: str | None = None) -> KafkaConnection:
    """The connection for ``settings``: ``bootstrap`` if given, else :func:`resolve_bootstrap`.

    Connecting to the embedded broker that `wearables broker --tls` runs (found through its
    ``broker.json``) uses the TLS files it recorded, unless the settings say how to secure it.
    """
    address = bootstrap or resolve_bootstrap(settings)
    return KafkaConnection(address, _with_embedded_tls(settings, address))


def _with_embedded_tls(settings: Settings, address: str) -> KafkaSettings:
    kafka = settings.kafka
    if (kafka.bootstrap_servers is not None or kafka.security_protocol != "PLAINTEXT"
            or kafka.ssl_cafile or kafka.ssl_certfile or kafka.ssl_keyfile):
        return kafka  # a configured cluster, or security said explicitly: as configured
    from runtime.broker import read_broker_record  # local, as in resolve_bootstrap

    record = read_broker_record(settings.data_dir)
    if record is None or record.tls is None or record.bootstrap != address:
        return kafka
    return kafka.model_copy(update={"security_protocol": "SSL", "ssl_cafile": record.tls.cafile,
                                    "ssl_certfile": record.tls.certfile, "ssl_keyfile": record.tls.keyfile})


def client_config(settings: Settings, bootstrap: str | None = None) -> dict[str, Any]:
    """Keyword arguments shared by every aiokafka client (address, TLS, SASL)."""
    return connection(settings, bootstrap).aiokafka()


def make_producer(settings: Settings, bootstrap: str | None = None, **overrides: Any) -> AIOKafkaProducer:
    """An at-least-once producer (the embedded broker refuses idempotent producers)."""
    queue_full_batches()  # every producer of the process, Faust's included (see runtime/producer_queue.py)
    options = ProducerOptions.of(settings.kafka).aiokafka()
    options.update(overrides)
    return AIOKafkaProducer(**client_config(settings, bootstrap), **options)


def make_consumer(
    settings: Settings, *topics: str, bootstrap: str | None = None, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer that starts from the earliest offset unless told otherwise."""
    options: dict[str, Any] = {
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        "session_timeout_ms": int(settings.kafka.session_timeout * 1000),
        "heartbeat_interval_ms": 1000,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **client_config(settings, bootstrap), **options)


async def check_reachable(settings: Settings, bootstrap: str | None = None) -> list[str]:
    """Fetch cluster metadata within the connect timeout; return the topic names.

    Raises KafkaUnreachable with what to do next instead of aiokafka's retry loop.
    """
    kafka = connection(settings, bootstrap)
    address = kafka.bootstrap
    admin = AIOKafkaAdminClient(**kafka.aiokafka(), request_timeout_ms=5000)
    try:
        # aiokafka logs each failed connection (the TLS verification error only there); our error says it once
        with _quiet("aiokafka") as failures:
            await asyncio.wait_for(admin.start(), settings.kafka.connect_timeout)
            return sorted(await asyncio.wait_for(admin.list_topics(), settings.kafka.connect_timeout))
    except (TimeoutError, KafkaConnectionError, KafkaError, OSError) as error:
        tls = _tls_problem(kafka.kafka, [*failures, error])
        if tls is not None:
            raise KafkaUnreachable(f"cannot reach Kafka at {address} over TLS: {tls}",
                                   bootstrap_servers=address) from None
        hint = (
            "check KAFKA_BOOTSTRAP_SERVERS (and KAFKA_SECURITY_PROTOCOL/SASL settings), or unset it "
            "to use the embedded broker"
            if settings.kafka.bootstrap_servers
            else "the embedded broker is not running: start it with `wearables broker`"
        )
        reason = {TimeoutError: "no answer", KafkaConnectionError: "connection failed"}.get(
            type(error), type(error).__name__
        )
        if _closed(failures) and kafka.kafka.security_protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
            reason = "the broker closed the connection; if it serves TLS, set KAFKA_SECURITY_PROTOCOL=SSL"
        raise KafkaUnreachable(
            f"cannot reach Kafka at {address} within {settings.kafka.connect_timeout:g}s ({reason}); {hint}",
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
                    NewTopic(p.name, p.partitions, settings.kafka.replication_factor, topic_configs=p.config())
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


class _Failures(logging.Handler):
    """Collects the exceptions aiokafka logs as ``"Unable connect to %s: %s"`` arguments."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.args, tuple):
            self.errors.extend(arg for arg in record.args if isinstance(arg, BaseException))


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[list[BaseException]]:
    """Nothing of logger ``name`` reaches the log meanwhile; yields the exceptions its errors carried."""
    log = logging.getLogger(name)
    level, propagate, failures = log.level, log.propagate, _Failures()
    log.setLevel(logging.ERROR)
    log.propagate = False
    log.addHandler(failures)
    try:
        yield failures.errors
    finally:
        log.removeHandler(failures)
        log.setLevel(level)
        log.propagate = propagate


_HOSTNAME_MISMATCH = frozenset({62, 64})  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


def _tls_problem(kafka: KafkaSettings, errors: list[BaseException]) -> str | None:
    """Why the connection failed at TLS, with what to do, from aiokafka's connection errors; None: not TLS."""
    tls = kafka.security_protocol in ("SSL", "SASL_SSL")
    for error in errors:
        if isinstance(error, ssl.SSLCertVerificationError):
            found = error.verify_message or error.reason or "certificate verify failed"
            if error.verify_code in _HOSTNAME_MISMATCH:
                return (f"the broker's certificate does not name the host connected to ({found}); use a "
                        "host name in KAFKA_BOOTSTRAP_SERVERS that its certificate has")
            where = (f"the CA in KAFKA_SSL_CAFILE ({kafka.ssl_cafile})" if kafka.ssl_cafile
                     else "any CA this system trusts (KAFKA_SSL_CAFILE is not set)")
            return (f"the broker's certificate is not signed by {where} ({found}); set KAFKA_SSL_CAFILE to the "
                    "PEM file of the CA that signed the broker's certificate")
    for error in errors:
        if isinstance(error, ssl.SSLError):
            return (f"the TLS handshake failed ({error.reason or error}); check KAFKA_SSL_CAFILE, "
                    "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE against the broker's TLS listener")
    if tls and _closed(errors):
        return ("the broker closed the connection after the TLS handshake: it may require a client certificate "
                "signed by its CA (KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE), or not serve TLS on that port "
                "(KAFKA_SECURITY_PROTOCOL)")
    return None


def _closed(errors: list[BaseException]) -> bool:
    """Whether the broker closed a connection aiokafka made (``Connection at host:port closed``)."""
    return any(isinstance(error, KafkaConnectionError) and "closed" in str(error) for error in errors)


def _file_problem(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "it is a directory"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, ssl.SSLError):
        return f"not a usable PEM file: {error.reason or error}"
    return str(error)


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    rows = []
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        rows.append((name, code, message))
    return rows
