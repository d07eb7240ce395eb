"""`wearables vault`: looking after the token vault, starting with rotating its key.

``WEARABLES_VAULT_KEY`` lists Fernet keys, comma-separated: the first encrypts, every one
decrypts (``runtime/keys.py``). ``rotate-key`` re-encrypts what is stored with the first, so the
others can be dropped.
"""

from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa

from cli.console import console, fail, run_async, settings_from_env
from connectors.vault import open_vault
from models.errors import ConfigurationError
from runtime.settings import Settings

__all__ = ["vault"]

_MAKE_KEY = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def vault() -> None:
    """The token vault: participants' vendor tokens and user IDs, encrypted with WEARABLES_VAULT_KEY."""


@vault.command("rotate-key", epilog=f"A new key: {_MAKE_KEY}",
               short_help="Re-encrypt the stored tokens with the first key of WEARABLES_VAULT_KEY.")
@click.option("--check", is_flag=True,
              help="Change nothing; exit 1 if any participant's tokens do not decrypt with the first key alone "
                   "(the old keys are still needed), 0 if the old keys can be dropped.")
def rotate_key(check: bool) -> None:
    """Re-encrypt every participant's tokens and vendor user ID with the first key of WEARABLES_VAULT_KEY.

    WEARABLES_VAULT_KEY holds Fernet keys, comma-separated: the first encrypts, every one
    decrypts. To rotate the vault key:

    \b
    1. make a new key and put it first, keeping the old one: WEARABLES_VAULT_KEY=new,old
       (restart the services with it: from then on they write with the new key);
    2. run `wearables vault rotate-key` (safe while the services run; run it again if stopped);
       `wearables vault rotate-key --check` then exits 0;
    3. drop the old key (WEARABLES_VAULT_KEY=new) and restart the services.

    Tokens that no listed key decrypts stop the rotation with an error: add the key they were
    encrypted with to the list and run again.
    """
    settings = settings_from_env()
    _require_vault(settings)
    if check:
        stale = run_async(_stale)(settings)
        if stale:
            console.print(f"{stale} participants' tokens do not decrypt with the first key of WEARABLES_VAULT_KEY "
                          "alone: keep the old key(s) and run `wearables vault rotate-key`", soft_wrap=True)
            raise SystemExit(1)
        console.print("every participant's tokens decrypt with the first key of WEARABLES_VAULT_KEY: "
                      "the old key(s) can be removed", soft_wrap=True)
        return
    rotated = run_async(_rotate)(settings)
    console.print(f"re-encrypted {rotated} participants' tokens with the first key of WEARABLES_VAULT_KEY; "
                  "you can now remove the old key(s)", soft_wrap=True)


async def _rotate(settings: Settings) -> int:
    try:
        async with open_vault(settings) as opened:
            return await opened.rotate_keys()
    except (OSError, sa.exc.SQLAlchemyError) as error:
        raise _unreachable(settings, error) from None


async def _stale(settings: Settings) -> int:
    """Links the first key alone does not decrypt (the vault opened with no other key)."""
    first_only = settings
    if settings.vault_key is not None:
        keys = [k.strip() for k in settings.vault_key.get_secret_value().split(",") if k.strip()]
        if len(keys) > 1:
            first_only = settings.with_overrides(vault_key=keys[0])
    try:
        async with open_vault(first_only) as opened:
            return await opened.undecryptable()
    except (OSError, sa.exc.SQLAlchemyError) as error:
        raise _unreachable(settings, error) from None


def _require_vault(settings: Settings) -> None:
    """A SQLite vault that does not exist is a mistake (a wrong WEARABLES_DATA_DIR), not an empty vault."""
    url = sa.engine.make_url(settings.vault_database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        if not Path(url.database).is_file():
            fail(f"no vault at {url.database}: set WEARABLES_DATA_DIR (or WEARABLES_VAULT_URL) to where the "
                 "services keep it")


def _unreachable(settings: Settings, error: Exception) -> ConfigurationError:
    where = sa.engine.make_url(settings.vault_database_url).render_as_string(hide_password=True)
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ConfigurationError(f"cannot open the vault at {where}: {reason} (check WEARABLES_VAULT_URL)")
