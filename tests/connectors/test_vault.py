"""The token vault under a scheduler's load: batched reads and group-committed cursors stay exact,
on SQLite (the default) and on PostgreSQL (a throwaway server, tests/postgres.py); and what security
audit finding 18 asked of it (rows bound, lookups cleared and unique, the file private and synced)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import random
import stat
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.oauth import TokenSet
from connectors.vault import AccountLinkedElsewhere, MisplacedCiphertext, TokenVault, open_vault
from models.errors import ConfigurationError
from models.participants import ApiGeneration, LinkStatus
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


async def test_a_held_cursor_moves_back_never_forward_and_none_is_made(vault: TokenVault) -> None:
    rid, other = await _link(vault, 2)
    await vault.advance_cursor(rid, "steps", "2026-11-20")
    await vault.hold_cursor(rid, "steps", "2026-11-17")  # a webhook's fetch failed on 11-18
    assert await vault.cursor(rid, "steps") == "2026-11-17"
    await vault.hold_cursor(rid, "steps", "2026-11-19")  # not past it: stays
    assert await vault.cursor(rid, "steps") == "2026-11-17"
    await vault.hold_cursor(other, "steps", "2026-11-17")  # no cursor yet: its next poll is a backfill
    assert await vault.cursor(other, "steps") is None


async def test_a_poll_moves_the_cursor_only_over_days_that_join_on_to_it(vault: TokenVault) -> None:
    rid, other = await _link(vault, 2)
    await vault.advance_cursor(rid, "steps", "2026-11-20")
    # a poll computed from that cursor reads 11-18..11-21; meanwhile a webhook's fetch failed on 11-15
    await vault.hold_cursor(rid, "steps", "2026-11-14")
    await vault.advance_cursor(rid, "steps", "2026-11-21", after="2026-11-17")
    assert await vault.cursor(rid, "steps") == "2026-11-14"  # the hold stays: 11-15 is read again next poll
    # the next poll starts before the hold: it reads the held day, and the cursor moves on
    await vault.advance_cursor(rid, "steps", "2026-11-21", after="2026-11-11")
    assert await vault.cursor(rid, "steps") == "2026-11-21"
    # never back; where there is none yet, the poll makes it
    await vault.advance_cursor(rid, "steps", "2026-11-19", after="2026-11-16")
    await vault.advance_cursor(other, "steps", "2026-11-21", after="2026-11-17")
    assert (await vault.cursor(rid, "steps"), await vault.cursor(other, "steps")) == ("2026-11-21", "2026-11-21")


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


async def test_links_are_counted_by_provider_status_and_generation_in_the_database(vault: TokenVault) -> None:
    assert await vault.link_counts() == {}
    for n in range(3):
        await vault.link(f"f{n}", Provider.FITBIT, f"fitbit-{n}", _tokens(n))
    await vault.link("g0", Provider.GOOGLE_HEALTH, "google-0", _tokens(9))
    await vault.set_status("f2", LinkStatus.REVOKED)
    f, g = Provider.FITBIT.value, Provider.GOOGLE_HEALTH.value
    old, new = ApiGeneration.FITBIT_WEB_API.value, ApiGeneration.GOOGLE_HEALTH_V4.value
    assert await vault.link_counts() == {(f, "linked", old): 2, (f, "revoked", old): 1, (g, "linked", new): 1}


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
            found = await vault.find_vendor_user(Provider.GOOGLE_HEALTH, f"vendor-{n}", revoked=True)
            live = await vault.find_vendor_user(Provider.GOOGLE_HEALTH, f"vendor-{n}")
            assert found == rid and live == (None if n == 3 else rid)  # a revoked link answers no webhook
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


# ------------------------------------------------------------------ audit finding 18
async def _raw(vault: TokenVault, sql: str, **binds: object) -> list[sa.Row[object]]:
    async with vault._engine.begin() as conn:
        result = await conn.execute(sa.text(sql), binds)
        return list(result) if result.returns_rows else []


async def test_an_unlinked_or_withdrawn_participant_keeps_no_vendor_user_id_and_webhooks_find_nobody(
        vault: TokenVault) -> None:
    for n, rid in enumerate(("r1", "r2", "r3")):
        await vault.link(rid, Provider.FITBIT, f"VU{n + 1}", _tokens(n))
    await vault.set_status("r1", LinkStatus.WITHDRAWN)
    await vault.set_status("r2", LinkStatus.REVOKED, forget_vendor_user=True)  # the participant unlinked
    await vault.set_status("r3", LinkStatus.REVOKED, provider=Provider.FITBIT)  # the vendor revoked the grant

    assert await vault.find_vendor_user(Provider.FITBIT, "VU1") is None
    assert await vault.find_vendor_user(Provider.FITBIT, "VU2") is None
    assert await vault.find_vendor_user(Provider.FITBIT, "VU1", revoked=True) is None
    assert await vault.find_vendor_user(Provider.FITBIT, "VU2", revoked=True) is None
    rows = await _raw(vault, "SELECT research_id, vendor_user_enc, vendor_user_hash FROM links ORDER BY research_id")
    assert [(row[1], row[2]) for row in rows[:2]] == [(None, None), (None, None)]
    assert await vault.vendor_user("r1") is None and await vault.vendor_user("r2") is None
    # a grant the vendor revoked stays findable for a move to Google Health, never for a webhook
    assert await vault.find_vendor_user(Provider.FITBIT, "VU3") is None
    assert await vault.find_vendor_user(Provider.FITBIT, "VU3", revoked=True) == "r3"
    assert await vault.vendor_user("r3") == "VU3"


async def test_one_vendor_account_is_linked_to_one_research_id(vault: TokenVault) -> None:
    await vault.link("r1", Provider.GOOGLE_HEALTH, "VU1", _tokens(1))
    with pytest.raises(AccountLinkedElsewhere, match="already linked to another participant") as refused:
        await vault.link("r2", Provider.GOOGLE_HEALTH, "VU1", _tokens(2))
    assert refused.value.provider is Provider.GOOGLE_HEALTH
    assert await vault.get("r2") is None and await vault.find_vendor_user(Provider.GOOGLE_HEALTH, "VU1") == "r1"
    await vault.link("r1", Provider.GOOGLE_HEALTH, "VU1", _tokens(3))  # the same participant again: fine
    await vault.link("r2", Provider.FITBIT, "VU1", _tokens(4))  # the same id at another vendor: another account
    # the database refuses it too (a race of two links past the check)
    with pytest.raises(sa.exc.IntegrityError):
        await _raw(vault, "UPDATE links SET provider = :p, vendor_user_hash = (SELECT vendor_user_hash FROM links "
                          "WHERE research_id = 'r1') WHERE research_id = 'r2'", p=Provider.GOOGLE_HEALTH.value)
    # once the first participant unlinked, the account may be linked anew
    await vault.set_status("r1", LinkStatus.REVOKED, forget_vendor_user=True)
    await vault.link("r3", Provider.GOOGLE_HEALTH, "VU1", _tokens(5))
    assert await vault.find_vendor_user(Provider.GOOGLE_HEALTH, "VU1") == "r3"


async def test_a_ciphertext_moved_to_another_row_or_column_does_not_decrypt(vault: TokenVault) -> None:
    await vault.link("r1", Provider.GOOGLE_HEALTH, "VU1", _tokens(1))
    await vault.link("r2", Provider.GOOGLE_HEALTH, "VU2", _tokens(2))
    await vault.link("r3", Provider.GOOGLE_HEALTH, "VU3", _tokens(3))
    await _raw(vault, "UPDATE links SET access_enc = (SELECT access_enc FROM links WHERE research_id = 'r1'), "
                      "refresh_enc = (SELECT refresh_enc FROM links WHERE research_id = 'r1') WHERE research_id = 'r2'")
    await _raw(vault, "UPDATE links SET access_enc = refresh_enc WHERE research_id = 'r3'")
    with pytest.raises(MisplacedCiphertext, match="written for another row or column"):
        await vault.tokens("r2")
    with pytest.raises(ConfigurationError, match="written for another row or column"):
        await vault.tokens("r3")
    held = await vault.tokens("r1")
    assert held is not None and held[0].refresh_token == "refresh-1"
    assert await vault.undecryptable() == 2
    with pytest.raises(MisplacedCiphertext):  # re-encrypting it would make it look like its own
        await vault.rotate_keys()


async def test_sqlite_syncs_every_commit(tmp_path: Path) -> None:
    async with open_vault(Settings.model_validate({"env": "demo", "data_dir": tmp_path})) as vault:
        assert [tuple(row) for row in await _raw(vault, "PRAGMA synchronous")] == [(2,)]  # FULL


async def test_the_sqlite_vault_and_its_wal_and_shm_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path / "data"})
    previous = os.umask(0o022)
    try:
        async with open_vault(settings) as vault:
            await vault.link("r1", Provider.FITBIT, "VU1", _tokens(1))
            files = sorted((tmp_path / "data").glob("vault.sqlite*"))
            assert [f.name for f in files] == ["vault.sqlite", "vault.sqlite-shm", "vault.sqlite-wal"]
            assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
        (tmp_path / "data" / "vault.sqlite").chmod(0o644)  # made by an older version
        async with open_vault(settings):
            assert stat.S_IMODE((tmp_path / "data" / "vault.sqlite").stat().st_mode) == 0o600
    finally:
        os.umask(previous)


async def test_vendor_user_lookups_are_keyed_with_a_key_of_their_own(tmp_path: Path) -> None:
    secret = "a-production-secret-of-more-than-32-characters"
    async with open_vault(_keyed(tmp_path, None, _KEY_A)) as vault:
        await vault.link("r1", Provider.FITBIT, "VU1", _tokens(1))
        [(stored,)] = await _raw(vault, "SELECT vendor_user_hash FROM links")
    message = b"vendor-user\x00fitbit\x00VU1"
    assert stored != hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    lookup_key = hashlib.sha256(b"vault-vendor-user-lookup\x00" + secret.encode()).digest()
    assert stored == hmac.new(lookup_key, message, hashlib.sha256).hexdigest()


async def test_a_vault_url_that_cannot_be_used_is_named_without_its_password(tmp_path: Path) -> None:
    for url in ("postgresql://user:hunter2@db.example:notaport/vault", "nosuchdb://user:hunter2@db.example/vault"):
        settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path, "vault_url": url})
        with pytest.raises(ConfigurationError) as refused:
            async with open_vault(settings):
                pass
        assert "hunter2" not in str(refused.value) and refused.value.__cause__ is None
    assert "nosuchdb://user:***@db.example/vault" in str(refused.value)


# the links table as versions before row binding made it (vendor user columns NOT NULL, no row_format)
_OLD_LINKS = sa.Table(
    "links", sa.MetaData(),
    sa.Column("research_id", sa.String(32), primary_key=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("api_generation", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("vendor_user_hash", sa.String(64), nullable=False, index=True),
    sa.Column("vendor_user_enc", sa.LargeBinary, nullable=False),
    sa.Column("access_enc", sa.LargeBinary),
    sa.Column("refresh_enc", sa.LargeBinary),
    sa.Column("expires_at", sa.Float),
    sa.Column("scope", sa.String(512)),
    sa.Column("timezone", sa.String(64)),
    sa.Column("linked_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
    sa.Column("token_version", sa.Integer, nullable=False, default=0),
    sa.Column("denied", sa.String(512), nullable=False, default="", server_default=""),
)


async def _old_vault(settings: Settings, rows: list[tuple[str, str, str]]) -> None:
    """A vault as the old code wrote it: unbound ciphertexts, hashes keyed with the secret key."""
    secret, fernet = settings.require_secret_key(), Fernet(_KEY_A.encode())
    engine = create_async_engine(settings.vault_database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_OLD_LINKS.metadata.create_all)
            for rid, vendor_user, status in rows:
                lookup = hmac.new(secret, f"vendor-user\x00fitbit\x00{vendor_user}".encode(), hashlib.sha256)
                withdrawn = status == "withdrawn"
                await conn.execute(_OLD_LINKS.insert().values(
                    research_id=rid, provider="fitbit", api_generation="fitbit_web_api", status=status,
                    vendor_user_hash=lookup.hexdigest(), vendor_user_enc=fernet.encrypt(vendor_user.encode()),
                    access_enc=None if withdrawn else fernet.encrypt(f"access-{rid}".encode()),
                    refresh_enc=None if withdrawn else fernet.encrypt(f"refresh-{rid}".encode()),
                    expires_at=0.0, scope="steps", linked_at=1.0, token_version=0, denied=""))
    finally:
        await engine.dispose()


async def test_a_vault_written_before_row_binding_is_upgraded_when_opened(tmp_path: Path,
                                                                         vault_url: str | None) -> None:
    settings = _keyed(tmp_path, vault_url, _KEY_A)
    await _old_vault(settings, [("r1", "VU1", "linked"), ("r2", "VU2", "withdrawn"), ("r3", "VU3", "linked")])
    async with open_vault(settings) as vault:
        held = await vault.tokens("r1")
        assert held is not None and held[0].refresh_token == "refresh-r1"
        assert await vault.find_vendor_user(Provider.FITBIT, "VU1") == "r1"  # re-hashed with the lookup key
        assert await vault.find_vendor_user(Provider.FITBIT, "VU2") is None and await vault.vendor_user("r2") is None
        rows = await _raw(vault, "SELECT research_id, row_format, vendor_user_hash FROM links ORDER BY research_id")
        assert [(row[0], row[1], row[2] is None) for row in rows] == [("r1", 2, False), ("r2", 2, True),
                                                                      ("r3", 2, False)]
        with pytest.raises(AccountLinkedElsewhere):  # the unique index came with the upgrade
            await vault.link("r9", Provider.FITBIT, "VU3", _tokens(9))
        await vault.set_status("r3", LinkStatus.REVOKED, forget_vendor_user=True)  # NULL is allowed now
        # now bound: the old tokens of r1 copied onto r3 do not decrypt there
        await _raw(vault, "UPDATE links SET access_enc = (SELECT access_enc FROM links WHERE research_id = 'r1'), "
                          "refresh_enc = (SELECT refresh_enc FROM links WHERE research_id = 'r1'), "
                          "status = 'linked' WHERE research_id = 'r3'")
        with pytest.raises(MisplacedCiphertext):
            await vault.tokens("r3")
    async with open_vault(settings) as vault:  # opening again changes nothing
        assert await vault.find_vendor_user(Provider.FITBIT, "VU1") == "r1"


async def test_an_old_vault_with_an_account_linked_twice_opens_without_the_index_and_refuses_a_third(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = _keyed(tmp_path, None, _KEY_A)
    await _old_vault(settings, [("r1", "VU1", "linked"), ("r2", "VU1", "linked")])
    async with open_vault(settings) as vault:
        assert "links a vendor account to more than one research id" in caplog.text
        assert await vault.find_vendor_user(Provider.FITBIT, "VU1") in {"r1", "r2"}
        with pytest.raises(AccountLinkedElsewhere):
            await vault.link("r3", Provider.FITBIT, "VU1", _tokens(3))
