"""The token vault under a scheduler's load: batched reads and group-committed cursors stay exact,
on SQLite (the default) and on PostgreSQL (a throwaway server, tests/postgres.py)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from connectors.oauth import TokenSet
from connectors.vault import TokenVault, open_vault
from models.errors import ConfigurationError
from models.participants import LinkStatus
from models.providers import Provider
from runtime.settings import Settings
from tests.postgres import PostgresServer, postgres_server


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
async def vault(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TokenVault]:
    values: dict[str, object] = {"env": "demo", "data_dir": tmp_path}
    if request.param == "postgresql":
        values["vault_url"] = await request.getfixturevalue("postgres").new_database()
    async with open_vault(Settings.model_validate(values)) as opened:
        assert opened._engine.dialect.name == request.param
        yield opened


def _tokens(n: int) -> TokenSet:
    return TokenSet(f"access-{n}", f"refresh-{n}", time.time() + 3600, "steps")


async def _link(vault: TokenVault, count: int) -> list[str]:
    ids = [f"r{n:04d}" for n in range(count)]
    for n, rid in enumerate(ids):
        await vault.link(rid, Provider.GOOGLE_HEALTH, f"vendor-{n}", _tokens(n))
    return ids


def _commits(vault: TokenVault) -> list[int]:
    seen: list[int] = []
    sa.event.listen(vault._engine.sync_engine, "commit", lambda _conn: seen.append(1))
    return seen


async def test_concurrent_cursor_advances_land_in_few_transactions_and_never_go_back(vault: TokenVault) -> None:
    ids = await _link(vault, 40)
    rng = random.Random(5)
    advances = [(rng.choice(ids), rng.choice(("steps", "heart-rate")), f"2026-11-{rng.randint(1, 28):02d}")
                for _ in range(600)]
    commits = _commits(vault)

    await asyncio.gather(*(vault.advance_cursor(rid, kind, day) for rid, kind, day in advances))

    expected: dict[tuple[str, str], str] = {}
    for rid, kind, day in advances:
        expected[(rid, kind)] = max(day, expected.get((rid, kind), ""))
    assert await vault.cursors() == expected
    assert 1 <= len(commits) <= 5  # 600 advances, a handful of transactions
    # an older date never moves a cursor back, alone or in a batch
    (rid, kind), newest = next(iter(expected.items()))
    await asyncio.gather(vault.advance_cursor(rid, kind, "2026-10-01"), vault.advance_cursor(ids[0], "sleep",
                                                                                             "2026-11-02"))
    assert await vault.cursor(rid, kind) == newest
    assert await vault.cursor(ids[0], "sleep") == "2026-11-02"


async def test_concurrent_reads_are_batched_and_reads_after_writes_see_them(vault: TokenVault) -> None:
    ids = await _link(vault, 120)
    statements: list[str] = []
    sa.event.listen(vault._engine.sync_engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]) if args[2].lstrip().upper().startswith("SELECT") else None)

    links = await asyncio.gather(*(vault.get(rid) for rid in [*ids, "nobody"]))
    tokens = await asyncio.gather(*(vault.tokens(rid) for rid in ids))

    assert [link.research_id if link else None for link in links] == [*ids, None]
    assert [pair[0].access_token for pair in tokens if pair] == [f"access-{n}" for n in range(120)]
    assert len(statements) == 2  # 121 lookups, then 120: one query each time

    await vault.set_status(ids[3], LinkStatus.REVOKED)
    assert await vault.rotate(ids[4], _tokens(1004), version=0)
    revoked, rotated = await asyncio.gather(vault.get(ids[3]), vault.tokens(ids[4]))
    assert revoked is not None and revoked.status is LinkStatus.REVOKED
    assert await vault.tokens(ids[3]) is None
    assert rotated is not None and rotated[0].access_token == "access-1004" and rotated[1] == 1


async def test_links_tokens_and_identity_round_trip_encrypted_at_rest(vault: TokenVault) -> None:
    rid = "R" + "7" * 20
    await vault.link(rid, Provider.FITBIT, "ABC123", _tokens(1), timezone="America/Chicago")
    await vault.link("R" + "8" * 20, Provider.GOOGLE_HEALTH, "ABC123", _tokens(2))  # same id, other vendor
    assert await vault.find_vendor_user(Provider.FITBIT, "ABC123") == rid
    assert await vault.find_vendor_user(Provider.FITBIT, "ZZZ999") is None
    assert await vault.vendor_user(rid) == "ABC123"
    link = await vault.get(rid)
    assert link is not None and link.timezone == "America/Chicago" and link.status is LinkStatus.LINKED
    assert [lk.research_id for lk in await vault.links()] == [rid, "R" + "8" * 20]

    # at rest: neither the tokens nor the vendor's user id appear in any column
    async with vault._engine.connect() as conn:
        stored = [repr(tuple(row)) for row in await conn.execute(sa.text("SELECT * FROM links"))]
    assert stored and not any(secret in row for row in stored for secret in ("access-1", "refresh-1", "ABC123"))

    # a rotation is optimistic: the first writer of a version wins, a stale one is refused
    assert await vault.rotate(rid, _tokens(10), version=0)
    assert not await vault.rotate(rid, _tokens(11), version=0)
    current = await vault.tokens(rid)
    assert current is not None and current[0].refresh_token == "refresh-10" and current[1] == 1

    # a revoked link loses its tokens and leaves the list of links to fetch; relinking starts afresh
    await vault.advance_cursor(rid, "steps", "2026-11-20")
    await vault.set_status(rid, LinkStatus.REVOKED)
    assert await vault.tokens(rid) is None
    assert not await vault.rotate(rid, _tokens(12), version=1)
    assert [lk.research_id for lk in await vault.links()] == ["R" + "8" * 20]
    assert [lk.research_id for lk in await vault.links(status=LinkStatus.REVOKED)] == [rid]
    await vault.link(rid, Provider.FITBIT, "ABC123", _tokens(3))
    assert await vault.cursor(rid, "steps") is None
    relinked = await vault.tokens(rid)
    assert relinked is not None and relinked[0].access_token == "access-3" and relinked[1] == 0


async def test_denied_data_types_are_kept_until_the_next_consent(vault: TokenVault) -> None:
    link = await vault.link("r1", Provider.GOOGLE_HEALTH, "vendor-1", _tokens(1), denied=("sleep",))
    assert link.denied_data_types == ("sleep",)
    denied = await vault.deny_data_type("r1", "heart-rate")
    assert denied is not None and denied.denied_data_types == ("sleep", "heart-rate")
    assert (await vault.deny_data_type("r1", "sleep")).denied_data_types == ("sleep", "heart-rate")  # type: ignore[union-attr]
    assert (await vault.get("r1")).record("k1").denied_data_types == ("sleep", "heart-rate")  # type: ignore[union-attr]
    again = await vault.link("r1", Provider.GOOGLE_HEALTH, "vendor-1", _tokens(2))  # a new consent asks anew
    assert again.denied_data_types == () and (await vault.get("r1")).denied_data_types == ()  # type: ignore[union-attr]
    assert await vault.deny_data_type("nobody", "sleep") is None


async def test_a_vault_made_before_a_column_existed_gets_it(tmp_path: Path) -> None:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path})
    async with open_vault(settings) as vault:
        await vault.link("r1", Provider.FITBIT, "vendor-1", _tokens(1))
        async with vault._engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE links DROP COLUMN denied"))
    async with open_vault(settings) as vault:
        link = await vault.get("r1")
        assert link is not None and link.denied_data_types == ()
        assert (await vault.deny_data_type("r1", "sleep")).denied_data_types == ("sleep",)  # type: ignore[union-attr]


async def test_concurrent_denials_of_one_participant_are_all_kept(vault: TokenVault) -> None:
    await vault.link("r1", Provider.GOOGLE_HEALTH, "vendor-1", _tokens(1))
    types = ("sleep", "heart-rate", "steps", "paired-devices")
    await asyncio.gather(*(vault.deny_data_type("r1", t) for t in types))
    link = await vault.get("r1")
    assert link is not None and sorted(link.denied_data_types) == sorted(types)


# ------------------------------------------------------------------ key rotation
_KEY_A, _KEY_B, _KEY_C = (Fernet.generate_key().decode() for _ in range(3))


@pytest.fixture(params=["sqlite", "postgresql"])
async def vault_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    return None if request.param == "sqlite" else str(await request.getfixturevalue("postgres").new_database())


def _keyed(tmp_path: Path, url: str | None, keys: str) -> Settings:
    return Settings.model_validate({"secret_key": "a-production-secret-of-more-than-32-characters",
                                    "vault_key": keys, "data_dir": tmp_path, "vault_url": url})


async def test_rotate_keys_re_encrypts_every_row_so_the_new_key_alone_reads_them(tmp_path: Path,
                                                                                 vault_url: str | None) -> None:
    async with open_vault(_keyed(tmp_path, vault_url, _KEY_A)) as vault:
        ids = await _link(vault, 7)
        await vault.set_status(ids[3], LinkStatus.REVOKED)  # no tokens left, its vendor user ID still encrypted
    async with open_vault(_keyed(tmp_path, vault_url, f"{_KEY_B},{_KEY_A}")) as vault:
        commits = _commits(vault)
        assert await vault.rotate_keys(batch=3) == 7
        assert len(commits) == 4  # three batches of at most 3 rows, and the read that found no more
        assert await vault.rotate_keys() == 7  # nothing lost by running again
    async with open_vault(_keyed(tmp_path, vault_url, _KEY_B)) as vault:
        assert await vault.undecryptable() == 0
        for n, rid in enumerate(ids):
            assert await vault.vendor_user(rid) == f"vendor-{n}"
            assert await vault.find_vendor_user(Provider.GOOGLE_HEALTH, f"vendor-{n}") == rid
            got = await vault.tokens(rid)
            if n == 3:
                assert got is None
            else:
                assert got is not None and (got[0].access_token, got[0].refresh_token) == (f"access-{n}",
                                                                                           f"refresh-{n}")
    async with open_vault(_keyed(tmp_path, vault_url, _KEY_C)) as vault:
        assert await vault.undecryptable() == 7
        with pytest.raises(ConfigurationError, match="WEARABLES_VAULT_KEY"):
            await vault.tokens(ids[0])
        with pytest.raises(ConfigurationError) as refused:
            await vault.rotate_keys()
        assert str(refused.value).startswith("the vault holds tokens that no key of WEARABLES_VAULT_KEY decrypts: "
                                             "add the key they were encrypted with")


async def test_before_rotation_the_old_rows_need_the_old_key(tmp_path: Path) -> None:
    async with open_vault(_keyed(tmp_path, None, _KEY_A)) as vault:
        ids = await _link(vault, 2)
    async with open_vault(_keyed(tmp_path, None, f"{_KEY_B},{_KEY_A}")) as vault:
        await vault.link("new", Provider.FITBIT, "vendor-new", _tokens(9))  # written with the first key
        assert await vault.undecryptable() == 0
    async with open_vault(_keyed(tmp_path, None, _KEY_B)) as vault:
        assert await vault.undecryptable() == len(ids)
        assert await vault.vendor_user("new") == "vendor-new"
    async with open_vault(_keyed(tmp_path, None, f"{_KEY_B},{_KEY_C}")) as vault:  # the old key is gone
        before = await _blobs(vault)
        with pytest.raises(ConfigurationError, match="no key of WEARABLES_VAULT_KEY decrypts"):
            await vault.rotate_keys()
        assert await _blobs(vault) == before  # the batch ("new" first, then the old rows) wrote nothing
    async with open_vault(_keyed(tmp_path, None, _KEY_A)) as vault:
        assert await vault.vendor_user(ids[0]) == "vendor-0"


async def _blobs(vault: TokenVault) -> list[tuple[bytes | None, ...]]:
    async with vault._engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT vendor_user_enc, access_enc, refresh_enc FROM links "
                                          "ORDER BY research_id"))
        return [tuple(row) for row in rows]
