"""Key lists: the first key encrypts, all decrypt; demo keys only in the demo; one-line errors."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.fernet import Fernet, InvalidToken

from models.errors import ConfigurationError
from runtime.keys import demo_key, derived_fernet, session_fernet, vault_fernet
from runtime.settings import DEMO_SECRET_KEY, Settings, load_settings

SECRET = "a-production-secret-of-more-than-32-characters"
# fixed, not generated: one random Fernet key in ~25,000 contains "demo" (any case) and would be refused
OLD, NEW = "KrEX1cxtpfxD6_7j7McBvHJiP2754WfUpXkNXosEH58=", "oXDPxLv8q-ukBRkBVFqFoMyDh9bRliovZJtRMk2pvz4="


def _production(**keys: str) -> Settings:
    return Settings.model_validate({"secret_key": SECRET, **keys})


def test_a_token_of_the_old_key_decrypts_with_new_then_old_and_a_rotated_one_with_new_alone() -> None:
    token = vault_fernet(_production(vault_key=OLD)).encrypt(b"refresh-1")
    both = vault_fernet(_production(vault_key=f"{NEW}, {OLD}"))
    assert both.decrypt(token) == b"refresh-1"
    with pytest.raises(InvalidToken):
        vault_fernet(_production(vault_key=NEW)).decrypt(token)
    rotated = both.rotate(token)
    assert vault_fernet(_production(vault_key=NEW)).decrypt(rotated) == b"refresh-1"
    with pytest.raises(InvalidToken):
        vault_fernet(_production(vault_key=OLD)).decrypt(rotated)
    # the first key encrypts: what the pair writes, the new key alone reads
    assert Fernet(NEW.encode()).decrypt(both.encrypt(b"x")) == b"x"


def test_session_keys_are_a_list_too() -> None:
    cookie = session_fernet(_production(session_key=OLD)).encrypt(b"session")
    assert session_fernet(_production(session_key=f"{NEW},{OLD}")).decrypt(cookie) == b"session"


@pytest.mark.parametrize(("field", "variable", "make"), [
    ("vault_key", "WEARABLES_VAULT_KEY", vault_fernet),
    ("session_key", "WEARABLES_SESSION_KEY", session_fernet),
])
@pytest.mark.parametrize("purpose", ["vault", "session"])
def test_demo_keys_are_refused_in_production(field: str, variable: str, make: object, purpose: str) -> None:
    assert callable(make)
    with pytest.raises(ConfigurationError) as refused:
        make(_production(**{field: f"{NEW},{demo_key(purpose)}"}))
    assert str(refused.value) == f"{variable} (key 2) is a public demo key, refused outside the demo"
    demo = Settings.model_validate({"env": "demo", field: demo_key(purpose)})
    assert make(demo).decrypt(Fernet(demo_key(purpose).encode()).encrypt(b"ok")) == b"ok"


@pytest.mark.parametrize(("field", "variable", "make"), [
    ("vault_key", "WEARABLES_VAULT_KEY", vault_fernet),
    ("session_key", "WEARABLES_SESSION_KEY", session_fernet),
])
def test_a_key_that_is_not_fernet_names_the_variable_and_its_position(field: str, variable: str,
                                                                       make: object) -> None:
    assert callable(make)
    with pytest.raises(ConfigurationError) as bad:
        make(_production(**{field: f"{NEW},{OLD},not-a-fernet-key"}))
    message = str(bad.value)
    assert message.startswith(f"{variable} (key 3) is not a Fernet key: make one with ")
    assert "\n" not in message and "not-a-fernet-key" not in message


@pytest.mark.parametrize(("field", "variable"), [("vault_key", "WEARABLES_VAULT_KEY"),
                                                 ("session_key", "WEARABLES_SESSION_KEY")])
def test_production_needs_the_key_set(field: str, variable: str) -> None:
    make = vault_fernet if field == "vault_key" else session_fernet
    with pytest.raises(ConfigurationError, match=f"^{variable} is not set: make a key with "):
        make(_production())
    with pytest.raises(ConfigurationError, match=f"^{variable} is empty"):
        make(_production(**{field: " , "}))


def test_the_demo_derivation_is_the_one_existing_demo_vaults_were_written_with() -> None:
    for purpose in ("vault", "session"):
        expected = base64.urlsafe_b64encode(hashlib.sha256(purpose.encode() + b"\x00"
                                                           + DEMO_SECRET_KEY.encode()).digest()).decode()
        assert demo_key(purpose) == expected
    # a token written by a demo vault before key lists existed (sha256(b"vault\x00" + demo secret))
    before = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"vault\x00" + DEMO_SECRET_KEY.encode()).digest()))
    assert vault_fernet(Settings(env="demo")).decrypt(before.encrypt(b"access-1")) == b"access-1"
    assert demo_key("vault") == "Dzb4PQutUqs7BONqlimZ2EbQNZBCqNMlnixy57NE4ao="  # pinned: never changes


def test_derived_keys_follow_the_secret_key() -> None:
    token = derived_fernet(_production(), "invitation").encrypt(b"invite")
    assert derived_fernet(_production(), "invitation").decrypt(token) == b"invite"
    with pytest.raises(InvalidToken):
        derived_fernet(_production(), "other").decrypt(token)
    other = Settings.model_validate({"secret_key": SECRET + "-changed"})
    with pytest.raises(InvalidToken):
        derived_fernet(other, "invitation").decrypt(token)


@pytest.mark.parametrize("secret", [DEMO_SECRET_KEY, DEMO_SECRET_KEY + "-prod", "x" + DEMO_SECRET_KEY])
def test_the_demo_secret_key_or_one_containing_it_is_refused_in_production(secret: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings({"WEARABLES_SECRET_KEY": secret})
    message = str(refused.value)
    assert message.startswith("WEARABLES_SECRET_KEY is (or contains) the public demo key, which is refused outside "
                              "the demo; generate one with ")
    assert "\n" not in message and DEMO_SECRET_KEY not in message
    assert load_settings({"WEARABLES_SECRET_KEY": secret, "WEARABLES_ENV": "demo"}).require_secret_key() == \
        secret.encode()


@pytest.mark.parametrize(("variable", "purpose"), [("WEARABLES_VAULT_KEY", "vault"),
                                                   ("WEARABLES_SESSION_KEY", "session")])
def test_each_demo_value_read_from_the_environment_is_one_line_naming_its_variable(variable: str,
                                                                                   purpose: str) -> None:
    settings = load_settings({"WEARABLES_SECRET_KEY": SECRET, variable: demo_key(purpose)})
    make = vault_fernet if purpose == "vault" else session_fernet
    with pytest.raises(ConfigurationError, match=f"^{variable} \\(key 1\\) is a public demo key, refused outside"):
        make(settings)


def _fernet_key_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(("key", "problem"), [
    (_fernet_key_of(b"a" * 32), "distinct characters"),  # a valid Fernet key, but no secret
    (_fernet_key_of(bytes(32)), "distinct characters"),
    ("demo" + NEW[4:], "contains the word 'demo'"),
    ("DeMo" + NEW[4:], "contains the word 'demo'"),
])
@pytest.mark.parametrize(("field", "variable", "make"), [
    ("vault_key", "WEARABLES_VAULT_KEY", vault_fernet),
    ("session_key", "WEARABLES_SESSION_KEY", session_fernet),
])
def test_guessable_fernet_keys_are_refused_in_production(key: str, problem: str, field: str, variable: str,
                                                         make: object) -> None:
    assert callable(make)
    Fernet(key.encode())  # the shape is right: only what it is makes it unusable
    with pytest.raises(ConfigurationError) as refused:
        make(_production(**{field: f"{NEW}, {key}\n"}))
    message = str(refused.value)
    assert message.startswith(f"{variable} (key 2) ") and problem in message and "refused outside the demo" in message
    assert "\n" not in message and key not in message
    demo = Settings.model_validate({"env": "demo", field: key})
    assert make(demo).decrypt(Fernet(key.encode()).encrypt(b"ok")) == b"ok"


def test_a_demo_key_with_whitespace_around_it_is_still_a_demo_key() -> None:
    with pytest.raises(ConfigurationError, match="is a public demo key"):
        vault_fernet(_production(vault_key=f" {demo_key('vault')}\n"))
