from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import ConfigurationError
from runtime.settings import DEMO_SECRET_KEY, Settings, load_settings

REAL_KEY = "x" * 40


def test_defaults_are_the_demo_shape() -> None:
    settings = load_settings({})
    assert settings.kafka.topic_prefix == "wearables."
    assert settings.kafka.partitions == 8
    assert settings.kafka.bootstrap_servers is None
    assert settings.uses_embedded_broker
    assert settings.topic("daily") == "wearables.daily"
    assert settings.app_id == "wearables.worker"


def test_reads_prefixed_and_kafka_variables() -> None:
    settings = load_settings({
        "WEARABLES_PARTITIONS": "12",
        "WEARABLES_TOPIC_PREFIX": "cohort7.",
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9092, k2:9093",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "svc",
        "KAFKA_SASL_PASSWORD": "pw-123",
        "WEARABLES_DATA_DIR": "/tmp/w",
    })
    assert settings.kafka.partitions == 12
    assert settings.topic("dlq") == "cohort7.dlq"
    assert settings.kafka.bootstrap_servers == "k1:9092,k2:9093"
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "pw-123"
    assert settings.data_dir == Path("/tmp/w")
    assert not settings.uses_embedded_broker
    assert "pw-123" not in str(settings.masked())


def test_environment_is_read_by_load_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEARABLES_PARTITIONS", "3")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    settings = load_settings()
    assert (settings.kafka.partitions, settings.kafka.bootstrap_servers) == (3, "broker:9092")


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"WEARABLES_PARTITIONS": "eight"}, "WEARABLES_PARTITIONS='eight'"),
        ({"WEARABLES_PARTITIONS": "0"}, "WEARABLES_PARTITIONS='0'"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "localhost"}, "KAFKA_BOOTSTRAP_SERVERS='localhost'"),
        ({"WEARABLES_TOPIC_PREFIX": "bad prefix/"}, "WEARABLES_TOPIC_PREFIX"),
        ({"WEARABLES_STORE": "redis://"}, "WEARABLES_STORE"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
    ],
)
def test_malformed_values_name_the_variable(environ: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(environ)
    message = str(info.value)
    assert names in message
    assert "\n" not in message


def test_demo_key_is_refused_outside_the_demo() -> None:
    with pytest.raises(ConfigurationError, match="refused outside the demo"):
        load_settings({"WEARABLES_SECRET_KEY": DEMO_SECRET_KEY})
    demo = load_settings({"WEARABLES_SECRET_KEY": DEMO_SECRET_KEY, "WEARABLES_ENV": "demo"})
    assert demo.require_secret_key() == DEMO_SECRET_KEY.encode()


def test_secret_key_must_be_configured_in_production() -> None:
    with pytest.raises(ConfigurationError, match="WEARABLES_SECRET_KEY is not set"):
        load_settings({}).require_secret_key()
    with pytest.raises(ConfigurationError, match="at least 32"):
        load_settings({"WEARABLES_SECRET_KEY": "short"})
    assert load_settings({"WEARABLES_SECRET_KEY": REAL_KEY}).require_secret_key() == REAL_KEY.encode()
    assert load_settings({"WEARABLES_ENV": "demo"}).require_secret_key() == DEMO_SECRET_KEY.encode()


def test_settings_are_frozen_and_overrides_revalidate() -> None:
    settings = Settings(env="demo")
    with pytest.raises(Exception, match="frozen"):
        settings.kafka.partitions = 2  # type: ignore[misc]
    assert settings.with_overrides(partitions=2).kafka.partitions == 2
    with pytest.raises(Exception, match="greater than or equal"):
        settings.with_overrides(partitions=0)


def test_embedded_state_is_kept_apart_from_cluster_state() -> None:
    embedded = Settings(env="demo", data_dir=Path("/d"))
    cluster = Settings(env="demo", data_dir=Path("/d"), kafka_bootstrap_servers="k:9092")
    assert embedded.state_dir != cluster.state_dir


def _documented(variable: str, lines: list[str]) -> bool:
    """In a table row by its full name, or as a ``_SUFFIX`` in a row of its prefix's variables
    (``WEARABLES_FITBIT_CLIENT_ID`` / ``_SECRET``)."""
    words = variable.split("_")
    shorts = ["`_" + "_".join(words[j:]) + "`" for j in range(1, len(words))]
    return any(variable in line or (words[0] + "_" in line and any(s in line for s in shorts)) for line in lines)


def test_every_variable_is_in_the_readme_configuration_table() -> None:
    from runtime.settings import _ROUTES, variable_name  # the routing table: every flat name

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = [line for line in readme.split("## Configuration", 1)[1].split("\n## ", 1)[0].splitlines()
             if line.startswith("|")]
    flat = [*_ROUTES, *(name for name in Settings.model_fields if name not in Settings.SECTIONS)]
    missing = [variable_name(name) for name in flat if not _documented(variable_name(name), table)]
    assert missing == []
