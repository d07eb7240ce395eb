from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from cli.topics import all_topic_plans, create_all_topics
from models.errors import ConfigurationError
from runtime.broker import free_port
from runtime.errors import KafkaUnreachable
from runtime.kafka import check_reachable, client_config, resolve_bootstrap, topic_plan
from runtime.settings import Settings

pytestmark = pytest.mark.integration


async def test_topics_are_created_once_with_configured_partitions(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(partitions=3)
    created, present = await create_all_topics(settings)
    expected = {plan.name for plan in all_topic_plans(settings)}
    assert set(created) == expected and present == []
    # Idempotent: a second run (another worker starting) creates nothing and does not fail.
    created_again, present_again = await create_all_topics(settings)
    assert created_again == [] and set(present_again) == expected

    admin = AIOKafkaAdminClient(**client_config(settings))
    await admin.start()
    try:
        described = await admin.describe_topics(sorted(expected))
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    assert partitions[settings.topic("samples")] == 3
    assert partitions[settings.topic("daily")] == 3
    assert partitions[f"{settings.app_id}-__assignor-__leader"] == 1


def test_catalogue_plan_marks_compacted_topics() -> None:
    plans = {p.name: p for p in topic_plan(Settings(env="demo"))}
    assert plans["wearables.participants"].config() == {"cleanup.policy": "compact"}
    assert plans["wearables.daily"].config() == {"cleanup.policy": "compact"}
    assert plans["wearables.samples"].config() == {"cleanup.policy": "delete"}


async def test_unreachable_cluster_is_one_clear_error() -> None:
    settings = Settings(env="demo", kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
                        kafka_connect_timeout=2)
    with pytest.raises(KafkaUnreachable) as info:
        await check_reachable(settings)
    message = str(info.value)
    assert "cannot reach Kafka at 127.0.0.1:" in message
    assert "KAFKA_BOOTSTRAP_SERVERS" in message
    assert "\n" not in message


def test_no_kafka_configured_says_what_to_do(tmp_path: object) -> None:
    settings = Settings(env="demo", data_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="wearables broker"):
        resolve_bootstrap(settings)


async def test_end_offsets_count_every_record(settings_factory: Callable[..., Settings]) -> None:
    """Guards the single-record-batch workaround: readers that stop at the end offset (Faust
    changelog recovery, lag) must see every record, even when the producer lingers."""
    from aiokafka import TopicPartition

    from runtime.kafka import TopicPlan, ensure_topics, make_consumer, make_producer

    settings = settings_factory()
    topic = settings.topic("offsets")
    await ensure_topics(settings, [TopicPlan(topic, 1)])
    producer = make_producer(settings, linger_ms=50)  # lingering would put all 5 in one batch
    await producer.start()
    try:
        sent = [await producer.send(topic, b"x" * 100, partition=0) for _ in range(5)]
        for future in sent:
            await future
    finally:
        await producer.stop()
    consumer = make_consumer(settings)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        assert (await consumer.end_offsets([partition]))[partition] == 5
    finally:
        await consumer.stop()


def _self_signed_ca(path: Path) -> Path:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_one_connection_gives_aiokafka_and_faust_the_same_tls_and_sasl(tmp_path: Path) -> None:
    import faust

    from runtime.kafka import KafkaConnection, ProducerOptions

    settings = Settings(env="demo", kafka_bootstrap_servers="k1:9093", kafka_security_protocol="SASL_SSL",
                        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="svc",
                        kafka_sasl_password="pw-123", kafka_ssl_cafile=_self_signed_ca(tmp_path / "ca.pem"))
    connection = KafkaConnection("k1:9093", settings.kafka)
    plain = connection.aiokafka()
    assert plain["bootstrap_servers"] == "k1:9093"
    assert plain["security_protocol"] == "SASL_SSL"
    assert (plain["sasl_mechanism"], plain["sasl_plain_username"], plain["sasl_plain_password"]) == (
        "SCRAM-SHA-512", "svc", "pw-123")
    assert plain["ssl_context"].get_ca_certs()[0]["subject"] == ((("commonName", "test-ca"),),)
    credentials = connection.faust()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.mechanism.value, credentials.username, credentials.password) == ("SCRAM-SHA-512", "svc",
                                                                                         "pw-123")
    assert credentials.ssl_context.get_ca_certs() == plain["ssl_context"].get_ca_certs()
    tls_only = KafkaConnection("k1:9093", settings.with_overrides(kafka_security_protocol="SSL").kafka)
    assert isinstance(tls_only.faust(), faust.SSLCredentials) and "sasl_mechanism" not in tls_only.aiokafka()
    assert KafkaConnection("k1:9092", Settings(env="demo").kafka).faust() is None

    options = ProducerOptions.of(settings.kafka)
    assert options.aiokafka()["max_batch_size"] == options.faust()["producer_max_batch_size"] == 1
    assert options.aiokafka()["compression_type"] == options.faust()["producer_compression_type"] == "zstd"
    assert ProducerOptions.of(settings.with_overrides(kafka_single_record_batches=False,
                                                      kafka_compression="none").kafka).faust() == {
        "producer_acks": -1, "producer_linger": 0.005, "producer_max_request_size": 8 << 20,
        "producer_max_batch_size": 1 << 20, "producer_compression_type": None}
