"""Secrets given as ``<VARIABLE>_FILE``: the path of a file holding the value, as Docker and
Kubernetes mount secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.errors import ConfigurationError
from runtime.logging import redact
from runtime.settings import _SECRET_FIELDS, load_settings, variable_name

FILE_KEY = "Hq4-tW9mZk2LpX7rYc5NvE8sJf3GbD6uAa1"  # 35 characters, no two alike in the first 32


def _secret(tmp_path: Path, text: str, name: str = "secret") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_secret_key_from_a_file_is_the_key_used(tmp_path: Path) -> None:
    settings = load_settings({"WEARABLES_SECRET_KEY_FILE": str(_secret(tmp_path, FILE_KEY + "\n"))})
    assert settings.require_secret_key() == FILE_KEY.encode()  # one trailing newline is not part of it


def test_only_one_trailing_newline_is_stripped(tmp_path: Path) -> None:
    password = "pw with spaces  \n"
    settings = load_settings({"KAFKA_BOOTSTRAP_SERVERS": "k1:9093", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                              "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "svc",
                              "KAFKA_SASL_PASSWORD_FILE": str(_secret(tmp_path, password + "\n"))})
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == password  # the second newline is kept
    crlf = load_settings({"WEARABLES_SECRET_KEY_FILE": str(_secret(tmp_path, FILE_KEY + "\r\n", "crlf"))})
    assert crlf.require_secret_key() == FILE_KEY.encode()


def test_every_secret_setting_can_come_from_a_file(tmp_path: Path) -> None:
    """Derived from the fields (every SecretStr), not from a list written here."""
    assert len(_SECRET_FIELDS) >= 9
    for flat in sorted(_SECRET_FIELDS):
        variable = variable_name(flat)
        value = f"postgresql://u:p-{flat}@db/v" if flat == "vault_url" else f"from-a-file-{flat}-Zq7vR2mXk9LpW4tYb8N"
        environ = {"WEARABLES_ENV": "demo", "WEARABLES_VENDOR_API_BASE": "http://127.0.0.1:9",
                   f"{variable}_FILE": str(_secret(tmp_path, value + "\n", flat))}
        if flat == "kafka_sasl_password":
            environ |= {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
                        "KAFKA_SASL_USERNAME": "svc"}
        settings = load_settings(environ)
        assert value in settings.secret_values(), variable


def test_both_the_value_and_its_file_are_refused_naming_both(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"WEARABLES_VAULT_KEY": "abc", "WEARABLES_VAULT_KEY_FILE": str(_secret(tmp_path, "abc"))})
    message = str(caught.value)
    assert "\n" not in message
    assert "WEARABLES_VAULT_KEY " in message and "WEARABLES_VAULT_KEY_FILE" in message


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "unreadable"])
def test_an_unreadable_file_is_one_line_naming_the_variable_and_the_path(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "mounted" / "secret_key"
    if kind == "directory":
        path.mkdir(parents=True)
    elif kind == "empty":
        path.parent.mkdir()
        path.write_text("")
    elif kind == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads a file whatever its mode")
        path.parent.mkdir()
        path.write_text(FILE_KEY)
        path.chmod(0)
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"WEARABLES_SECRET_KEY_FILE": str(path)})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"WEARABLES_SECRET_KEY_FILE='{path}': cannot read the secret")
    assert "unset it" in message  # and what to do


def test_a_file_for_a_setting_that_is_no_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"WEARABLES_PARTITIONS_FILE": str(_secret(tmp_path, "4"))})
    message = str(caught.value)
    assert "\n" not in message
    assert "WEARABLES_PARTITIONS_FILE" in message and "not a secret" in message
    assert "set WEARABLES_PARTITIONS itself" in message
    # a _FILE of no setting at all is ignored, as every unknown variable is
    assert load_settings({"WEARABLES_NOTHING_FILE": "/nowhere"}).kafka.partitions == 8


def test_a_value_from_a_file_never_shows_and_is_redacted_in_logs(tmp_path: Path) -> None:
    vault = "postgresql://vault:Fi1eSecretPw-9x@db.internal/vault"
    settings = load_settings({
        "WEARABLES_SECRET_KEY_FILE": str(_secret(tmp_path, FILE_KEY + "\n", "key")),
        "WEARABLES_VAULT_URL_FILE": str(_secret(tmp_path, vault + "\n", "vault")),
        "WEARABLES_VAULT_KEY_FILE": str(_secret(tmp_path, "fernetA-Zq7vR2mXk9,fernetB-LpW4tYb8N\n", "fernet")),
    })
    shown = f"{settings!r} {settings} {settings.masked()} {settings.model_dump()}"
    for secret in (FILE_KEY, "Fi1eSecretPw-9x", "fernetA-Zq7vR2mXk9", "fernetB-LpW4tYb8N"):
        assert secret not in shown
        assert secret not in redact(f"oops: {secret} in a log line")  # registered with the log filter
    assert settings.masked()["vault_url"] == "postgresql://vault:***@db.internal/vault"


def test_a_bad_value_from_a_file_names_its_file_and_not_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"WEARABLES_SECRET_KEY_FILE": str(_secret(tmp_path, "short-Kp2\n"))})
    message = str(caught.value)
    assert "WEARABLES_SECRET_KEY must be at least 32 characters" in message
    assert "WEARABLES_SECRET_KEY_FILE" in message and "short-Kp2" not in message
