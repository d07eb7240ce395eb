"""`wearables vault rotate-key` as an operator meets it: the count, --check, one-line errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet

from cli.vault import vault
from connectors.oauth import TokenSet
from connectors.vault import open_vault
from models.providers import Provider
from runtime.settings import load_settings

SECRET = "a-production-secret-of-more-than-32-characters"
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def _env(tmp_path: Path, keys: str) -> dict[str, str]:
    return {"WEARABLES_SECRET_KEY": SECRET, "WEARABLES_VAULT_KEY": keys, "WEARABLES_DATA_DIR": str(tmp_path)}


def _rotate_key(tmp_path: Path, keys: str, *args: str) -> Result:
    return CliRunner(env=_env(tmp_path, keys)).invoke(vault, ["rotate-key", *args])


def _tokens_read_with(tmp_path: Path, keys: str, count: int) -> list[tuple[str | None, str]]:
    async def read() -> list[tuple[str | None, str]]:
        async with open_vault(load_settings(_env(tmp_path, keys))) as opened:
            out = []
            for n in range(count):
                got = await opened.tokens(f"r{n}")
                assert got is not None
                out.append((await opened.vendor_user(f"r{n}"), got[0].refresh_token))
            return out
    return asyncio.run(read())


@pytest.fixture
def old_vault(tmp_path: Path) -> int:
    """Three participants whose tokens are encrypted with OLD."""
    async def fill() -> None:
        async with open_vault(load_settings(_env(tmp_path, OLD))) as opened:
            for n in range(3):
                await opened.link(f"r{n}", Provider.FITBIT, f"vendor-{n}", TokenSet(f"a{n}", f"f{n}", 0.0, "steps"))
    asyncio.run(fill())
    return 3


def test_rotate_key_re_encrypts_with_the_first_key(tmp_path: Path, old_vault: int) -> None:
    result = _rotate_key(tmp_path, f"{NEW},{OLD}")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == ("re-encrypted 3 participants' tokens with the first key of WEARABLES_VAULT_KEY; "
                                     "you can now remove the old key(s)")
    assert _tokens_read_with(tmp_path, NEW, old_vault) == [(f"vendor-{n}", f"f{n}") for n in range(3)]


def test_check_fails_before_the_rotation_and_passes_after(tmp_path: Path, old_vault: int) -> None:
    before = _rotate_key(tmp_path, f"{NEW},{OLD}", "--check")
    assert before.exit_code == 1
    assert before.stdout.startswith(f"{old_vault} participants' tokens do not decrypt with the first key")
    assert _tokens_read_with(tmp_path, OLD, old_vault)[0] == ("vendor-0", "f0")  # --check changed nothing
    assert _rotate_key(tmp_path, f"{NEW},{OLD}").exit_code == 0
    after = _rotate_key(tmp_path, f"{NEW},{OLD}", "--check")
    assert after.exit_code == 0, after.output
    assert "the old key(s) can be removed" in after.stdout
    assert _rotate_key(tmp_path, NEW, "--check").exit_code == 0


@pytest.mark.parametrize(("keys", "expected"), [
    ("not-a-key", "WEARABLES_VAULT_KEY (key 1) is not a Fernet key"),
    (f"{NEW},{Fernet.generate_key().decode()}", "no key of WEARABLES_VAULT_KEY decrypts"),  # OLD is missing
])
def test_a_bad_key_exits_with_one_line(tmp_path: Path, old_vault: int, keys: str, expected: str) -> None:
    del old_vault
    result = _rotate_key(tmp_path, keys)
    assert result.exit_code == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_no_vault_is_an_error_not_an_empty_vault(tmp_path: Path) -> None:
    result = _rotate_key(tmp_path, f"{NEW},{OLD}")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"wearables: error: no vault at {tmp_path / 'vault.sqlite'}: "
                                     "set WEARABLES_DATA_DIR (or WEARABLES_VAULT_URL) to where the services keep it")
    assert not (tmp_path / "vault.sqlite").exists()


def test_help_explains_the_rotation_procedure() -> None:
    text = CliRunner().invoke(vault, ["rotate-key", "--help"]).output
    assert "WEARABLES_VAULT_KEY=new,old" in text and "(WEARABLES_VAULT_KEY=new)" in text
    steps = [line.strip()[:2] for line in text.splitlines() if line.strip()[:2] in {"1.", "2.", "3."}]
    assert steps == ["1.", "2.", "3."]
