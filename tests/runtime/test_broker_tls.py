"""The embedded broker's TLS mode (stunnel4 in front of Tansu) and TLS errors a person can act on.

Real processes and real aiokafka clients over TCP: the broker's certificates, a produce/consume
round trip over TLS, `wearables broker --tls` as a user runs it, and the one-line errors of a
wrong CA, a missing client certificate and an unreadable CA file, through the real `wearables`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from runtime.broker import (
    EmbeddedBroker,
    free_port,
    read_address_file,
    read_broker_record,
)
from runtime.broker_tls import BrokerTls, make_tls_files
from runtime.errors import BrokerBinaryMissing, KafkaUnreachable
from runtime.kafka import check_reachable, connection, make_consumer, make_producer
from runtime.settings import Settings
from tests.runtime.test_broker import _wait_gone

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WEARABLES = [sys.executable, "-m", "cli.main"]


def _tls(broker: EmbeddedBroker) -> BrokerTls:
    assert broker.tls is not None
    return broker.tls


def _settings(broker: EmbeddedBroker, tmp_path: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {"env": "demo", "kafka_bootstrap_servers": broker.bootstrap, "data_dir": tmp_path,
                              "topic_prefix": f"t{uuid.uuid4().hex[:10]}.", "kafka_connect_timeout": 10,
                              **_tls(broker).settings()}
    values.update(changes)
    return Settings.model_validate(values)


def _clean_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEARABLES_", "KAFKA_"))}
    return env | variables


def _wearables(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WEARABLES, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=90,
                          check=False)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wearables: error: ")
    return lines[0]


def test_the_certificates_are_private_and_name_the_loopback_host(tls_broker: EmbeddedBroker) -> None:
    tls = _tls(tls_broker)
    folder = tls.cafile.parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == [  # the CA's key is never written
        "ca.pem", "client-key.pem", "client.pem", "server-key.pem", "server.pem", "stunnel.conf"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    ca = x509.load_pem_x509_certificate(tls.cafile.read_bytes())
    server = x509.load_pem_x509_certificate((folder / "server.pem").read_bytes())
    client = x509.load_pem_x509_certificate(tls.certfile.read_bytes())
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


async def test_an_aiokafka_round_trip_goes_over_tls(tls_broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = _settings(tls_broker, tmp_path)
    topic, count = settings.topic("roundtrip"), 300
    producer = make_producer(settings)
    await producer.start()
    try:
        for i in range(count):
            await producer.send(topic, f"value-{i}".encode(), key=f"k{i % 13}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    consumer = make_consumer(settings, topic, group_id=f"tls-{uuid.uuid4().hex[:6]}")
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(values) < count and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            values.extend(m.value for messages in batch.values() for m in messages)
        # every broker the cluster advertises (leaders, the group coordinator) is the TLS port
        brokers = consumer._client.cluster.brokers()  # what the client was told to reconnect to
        assert {(b.host, b.port) for b in brokers} == {(tls_broker.host, tls_broker.port)}
    finally:
        await consumer.stop()
    assert sorted(values) == sorted(f"value-{i}".encode() for i in range(count))


async def test_plaintext_and_a_missing_client_certificate_are_turned_away(tls_broker: EmbeddedBroker,
                                                                         tmp_path: Path) -> None:
    plain = _settings(tls_broker, tmp_path, kafka_security_protocol="PLAINTEXT", kafka_ssl_cafile=None,
                      kafka_ssl_certfile=None, kafka_ssl_keyfile=None, kafka_connect_timeout=5)
    with pytest.raises(KafkaUnreachable) as caught:
        await check_reachable(plain)
    assert "if it serves TLS, set KAFKA_SECURITY_PROTOCOL=SSL" in str(caught.value)

    no_certificate = _settings(tls_broker, tmp_path, kafka_ssl_certfile=None, kafka_ssl_keyfile=None)
    with pytest.raises(KafkaUnreachable) as caught:
        await check_reachable(no_certificate)
    message = str(caught.value)
    assert message.startswith(f"cannot reach Kafka at {tls_broker.bootstrap} over TLS: ")
    assert "client certificate" in message and "KAFKA_SSL_CERTFILE" in message and "\n" not in message


async def test_a_wrong_ca_is_one_line_naming_kafka_ssl_cafile(tls_broker: EmbeddedBroker, tmp_path: Path) -> None:
    other = make_tls_files(tmp_path / "other")  # a CA that did not sign the broker's certificate
    settings = _settings(tls_broker, tmp_path, kafka_ssl_cafile=other.cafile)
    started = time.monotonic()
    with pytest.raises(KafkaUnreachable) as caught:
        await check_reachable(settings)
    assert time.monotonic() - started < 5  # told at once, not after the connect timeout
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot reach Kafka at {tls_broker.bootstrap} over TLS: the broker's certificate "
                              f"is not signed by the CA in KAFKA_SSL_CAFILE ({other.cafile})")


@pytest.mark.parametrize("command", [["topics", "create"], ["worker", "--metrics-port", "0"]])
def test_a_wrong_ca_stops_a_command_with_one_line_naming_kafka_ssl_cafile(
        tls_broker: EmbeddedBroker, tmp_path: Path, command: list[str]) -> None:
    tls, other = _tls(tls_broker), make_tls_files(tmp_path / "other")
    result = _wearables(*command, env=_clean_env(
        WEARABLES_ENV="demo", WEARABLES_DATA_DIR=str(tmp_path), KAFKA_BOOTSTRAP_SERVERS=tls_broker.bootstrap,
        KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=str(other.cafile), KAFKA_SSL_CERTFILE=str(tls.certfile),
        KAFKA_SSL_KEYFILE=str(tls.keyfile), WEARABLES_KAFKA_CONNECT_TIMEOUT="10"))
    line = _one_error_line(result)
    assert f"cannot reach Kafka at {tls_broker.bootstrap} over TLS" in line
    assert f"not signed by the CA in KAFKA_SSL_CAFILE ({other.cafile})" in line


@pytest.mark.parametrize("kind", ["missing", "not a certificate"])
def test_an_unusable_ca_file_is_one_line_naming_kafka_ssl_cafile(tls_broker: EmbeddedBroker, tmp_path: Path,
                                                                 kind: str) -> None:
    cafile = tmp_path / "ca.pem"
    if kind == "not a certificate":
        cafile.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    result = _wearables("topics", "create", env=_clean_env(
        WEARABLES_DATA_DIR=str(tmp_path), KAFKA_BOOTSTRAP_SERVERS=tls_broker.bootstrap,
        KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=str(cafile)))
    line = _one_error_line(result)
    assert f"KAFKA_SSL_CAFILE='{cafile}': cannot use it as the CA" in line


def test_without_stunnel_the_tls_mode_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setattr("runtime.broker.shutil.which", lambda name: None)
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log", tls=True)
    with pytest.raises(BrokerBinaryMissing, match="apt-get install stunnel4"):
        broker.spawn()
    assert broker.pid is None  # nothing was started


def _start_tls_broker_command(data_dir: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [*WEARABLES, "broker", "--tls", "--port", str(free_port()), "--metrics-port", "0", "--no-create-topics"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env=_clean_env(WEARABLES_DATA_DIR=str(data_dir)))
    assert process.stdout is not None
    lines, printed = [], {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "KAFKA_SSL_KEYFILE" not in printed:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        name, sep, value = line.strip().partition("=")
        if sep and name.startswith("KAFKA_"):
            printed[name] = value
    if "KAFKA_SSL_KEYFILE" not in printed:
        process.kill()
        raise AssertionError("`wearables broker --tls` did not print its variables:\n" + "".join(lines))
    return process, printed


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
async def test_broker_command_prints_and_records_its_tls_and_takes_stunnel_with_it(tmp_path: Path,
                                                                                   stop: signal.Signals) -> None:
    process, printed = _start_tls_broker_command(tmp_path)
    try:
        record = read_broker_record(tmp_path)
        assert record is not None and record.tls is not None and record.stunnel_pid is not None
        assert printed == {"KAFKA_BOOTSTRAP_SERVERS": record.bootstrap, **record.tls.variables()}
        assert record.tls.cafile == (tmp_path / "broker-tls" / "ca.pem").resolve()
        # a command with the same data dir and nothing about TLS in its settings connects over TLS
        found = Settings.model_validate({"env": "demo", "data_dir": tmp_path, "kafka_connect_timeout": 10})
        assert connection(found).kafka.security_protocol == "SSL"
        assert isinstance(await check_reachable(found), list)
        # the variables it printed are enough elsewhere
        elsewhere = Settings.model_validate({"env": "demo", "data_dir": tmp_path / "elsewhere",
                                             **{k.lower(): v for k, v in printed.items()}})
        assert isinstance(await check_reachable(elsewhere), list)
    finally:
        process.send_signal(stop)
        code = process.wait(30)
    assert code == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
    assert _wait_gone(record.pid), "Tansu outlived `wearables broker --tls`"
    assert _wait_gone(record.stunnel_pid), "stunnel outlived `wearables broker --tls`"
    assert read_address_file(tmp_path) is None  # removed, or (SIGKILL) no longer trusted
    if stop == signal.SIGKILL:
        assert json.loads((tmp_path / "broker.json").read_text())["stunnel_pid"] == record.stunnel_pid
