from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import ConfigurationError
from runtime.logging import redact
from runtime.settings import DEMO_SECRET_KEY, Settings, VendorSettings, load_settings

REAL_KEY = "Zq7-vR2mXk9LpW4tYb8NcE1sHf6GjD3u"  # 32 characters, all distinct


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


VAULT_URL = "postgresql://vault:Sup3rS3cretPw@db.internal/vault"


def test_the_vault_url_password_is_never_shown() -> None:
    settings = load_settings({"WEARABLES_SECRET_KEY": REAL_KEY, "WEARABLES_VAULT_URL": VAULT_URL})
    assert "Sup3rS3cretPw" not in repr(settings) and "Sup3rS3cretPw" not in str(settings)
    assert "Sup3rS3cretPw" not in str(settings.masked()) and "Sup3rS3cretPw" not in settings.model_dump_json()
    assert settings.masked()["vault_url"] == "postgresql://vault:***@db.internal/vault"  # which database, still
    assert settings.vault_database_url == "postgresql+asyncpg://vault:Sup3rS3cretPw@db.internal/vault"
    assert settings.with_overrides(partitions=2).vault_database_url == settings.vault_database_url
    with pytest.raises(ConfigurationError) as bad:
        load_settings({"WEARABLES_VAULT_URL": VAULT_URL, "WEARABLES_SECRET_KEY": REAL_KEY, "WEARABLES_PARTITIONS": "x"})
    assert "Sup3rS3cretPw" not in str(bad.value)
    with pytest.raises(ConfigurationError) as bad:  # an error about the vault URL itself names it, not its value
        load_settings(vault_url=[VAULT_URL])
    assert str(bad.value).startswith("WEARABLES_VAULT_URL: ") and "Sup3rS3cretPw" not in str(bad.value)
    assert "Sup3rS3cretPw" not in redact(f"connection to {VAULT_URL} refused")


def test_loaded_secrets_are_redacted_from_logs() -> None:
    key, password = "Lq8-xT3nYk0MpV5uZc9OdF2tIg7HkE4w", "hunter2-but-longer"
    settings = load_settings({"WEARABLES_SECRET_KEY": key, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                              "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "svc",
                              "KAFKA_SASL_PASSWORD": password,
                              "WEARABLES_VAULT_URL": "postgresql://v:db-pass-9876@db/vault"})
    assert {key, password, "db-pass-9876"} <= set(settings.secret_values())
    assert redact(f"a {key} b {password} c db-pass-9876 d") == "a [redacted] b [redacted] c [redacted] d"


@pytest.mark.parametrize("key", [
    DEMO_SECRET_KEY + "\n", " " + DEMO_SECRET_KEY + " ", DEMO_SECRET_KEY.upper(),
    "our-demo-key-" + REAL_KEY, "DEMO" + REAL_KEY, "a" * 32, "changeme" * 4, " " + "0123456789abcd" * 3 + " ",
])
def test_guessable_secret_keys_are_refused_outside_the_demo(key: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings({"WEARABLES_SECRET_KEY": key})
    message = str(refused.value)
    assert message.startswith("WEARABLES_SECRET_KEY ") and "refused outside the demo" in message
    assert "\n" not in message and key.strip() not in message
    assert load_settings({"WEARABLES_SECRET_KEY": key, "WEARABLES_ENV": "demo"}).require_secret_key() == key.encode()


def test_short_keys_are_measured_without_their_whitespace() -> None:
    with pytest.raises(ConfigurationError, match="at least 32"):
        load_settings({"WEARABLES_SECRET_KEY": REAL_KEY[:30] + "\n\n\n"})


@pytest.mark.parametrize("key", [REAL_KEY, REAL_KEY + "\n",
                                 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"])  # hex, 64
def test_random_keys_are_accepted(key: str) -> None:
    assert load_settings({"WEARABLES_SECRET_KEY": key}).require_secret_key() == key.encode()


@pytest.mark.parametrize("base", ["http://127.0.0.1:9", "http://localhost:8000/", "http://[::1]:9", "http://127.0.0.2"])
def test_the_demo_runs_against_a_loopback_simulator(base: str) -> None:
    settings = load_settings({"WEARABLES_ENV": "demo", "WEARABLES_VENDOR_API_BASE": base})
    settings.vendors.require_simulator_in_demo()  # raises for anything but a loopback simulator
    assert settings.vendors.api_base == base


@pytest.mark.parametrize("base", ["https://api.fitbit.com", "http://sim.example.org:8000", "http://127.0.0.1.example.org"])
def test_the_demo_never_points_at_a_remote_vendor(base: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings({"WEARABLES_ENV": "demo", "WEARABLES_VENDOR_API_BASE": base})
    message = str(refused.value)
    assert message.startswith("WEARABLES_VENDOR_API_BASE=") and "loopback" in message and "\n" not in message
    assert load_settings({"WEARABLES_VENDOR_API_BASE": base}).vendors.api_base == base  # production may


@pytest.mark.parametrize(("variable", "value"), [
    ("WEARABLES_GOOGLE_CLIENT_SECRET", "a-real-google-client-secret"),
    ("WEARABLES_FITBIT_CLIENT_ID", "23ABCD"),
])
def test_the_demo_refuses_real_oauth_clients_against_the_real_hosts(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings({"WEARABLES_ENV": "demo", variable: value})
    message = str(refused.value)
    assert message.startswith(f"{variable} configured with WEARABLES_ENV=demo") and "\n" not in message
    assert value not in message


def test_the_demo_refuses_the_real_hosts_where_vendor_clients_are_built() -> None:
    demo = load_settings({"WEARABLES_ENV": "demo"})  # the demo's vault and gateway start before the simulator
    with pytest.raises(ConfigurationError, match=r"^WEARABLES_VENDOR_API_BASE is not a loopback URL"):
        demo.vendors.require_simulator_in_demo()
    load_settings({}).vendors.require_simulator_in_demo()  # production talks to the vendors


@pytest.mark.parametrize("uri", ["http://portal.example.org/link/callback", "http://127.0.0.1:8471/link/callback",
                                 "portal.example.org/link/callback"])
def test_the_redirect_uri_is_https_outside_the_demo(uri: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings({"WEARABLES_REDIRECT_URI": uri})
    message = str(refused.value)
    assert message.startswith(f"WEARABLES_REDIRECT_URI={uri!r} is not https") and "\n" not in message
    assert load_settings({"WEARABLES_REDIRECT_URI": uri, "WEARABLES_ENV": "demo"}).vendors.redirect_uri == uri


def test_the_redirect_uri_must_be_set_outside_the_demo() -> None:
    with pytest.raises(ConfigurationError, match=r"^WEARABLES_REDIRECT_URI is not set"):
        _ = load_settings({}).vendors.redirect_uri
    https = "https://portal.example.org/link/callback"
    assert load_settings({"WEARABLES_REDIRECT_URI": https}).vendors.redirect_uri == https
    assert load_settings({"WEARABLES_ENV": "demo"}).vendors.redirect_uri == "http://127.0.0.1:8471/link/callback"
    assert Settings(env="demo").with_overrides(redirect_uri="http://127.0.0.1:1/cb").vendors.redirect_uri == \
        "http://127.0.0.1:1/cb"


@pytest.mark.parametrize("given", ["demo-fitbit-client-secret\n", " DEMO-FITBIT-CLIENT-SECRET",
                                   "x-demo-fitbit-client-secret"])
def test_demo_stand_ins_are_refused_with_whitespace_or_another_case(given: str) -> None:
    vendors = VendorSettings(fitbit_client_secret=given)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^WEARABLES_FITBIT_CLIENT_SECRET is \(or contains\) the public"):
        vendors.demo_or_required(vendors.fitbit_client_secret, "WEARABLES_FITBIT_CLIENT_SECRET",
                                 "demo-fitbit-client-secret")
