"""The token vault: who is linked to which vendor account, their tokens, and fetch cursors.

Tokens and vendor user IDs are encrypted at rest with Fernet (``cryptography``; key from
``WEARABLES_VAULT_KEY``). Each ciphertext is bound to its row: the payload names the research_id
and the column it was written for, and a ciphertext read from any other place is refused
(:class:`MisplacedCiphertext`), so copying a participant's tokens onto another row gets nothing.
Webhooks name the vendor's user, so that ID is also stored as a keyed HMAC for lookup; only a
live (``linked``) row answers a lookup, one vendor account is linked to at most one research_id
(a unique index; :class:`AccountLinkedElsewhere`), and an unlink or a withdrawal erases the
vendor user ID and its hash from the row. SQLite by default, PostgreSQL by URL (SQLAlchemy Core,
async drivers); every write is one transaction, and SQLite syncs each commit (``synchronous=FULL``),
so a rotated refresh token is on disk before anyone uses the new access token. A SQLite vault
is created readable by its owner only (0600).

The keys, and what rotating each does:

- ``WEARABLES_VAULT_KEY`` (one or more Fernet keys, ``runtime/keys.py``: the first encrypts, all
  decrypt) encrypts tokens and vendor user IDs. Rotate it by putting the new key first and
  running ``wearables vault rotate-key`` (:meth:`TokenVault.rotate_keys`); lookups are not
  affected.
- The lookup key of the vendor-user hash is derived from ``WEARABLES_SECRET_KEY`` under its own
  label (``vault-vendor-user-lookup``), never used for anything else and never the vault key.
  Changing the secret key changes every research_id (``models/ids.py``) and so is no rotation;
  should it happen, :meth:`TokenVault.rotate_keys` recomputes every hash from the encrypted IDs,
  and until then webhooks find nobody (``unknown_user``).

Vaults written before rows were bound (``row_format`` 1: unbound payloads, hashes keyed with the
secret key itself) are upgraded when opened: each row whose ciphertexts decrypt is re-encrypted
bound, re-hashed with the lookup key and, if withdrawn, loses its vendor user ID. A row no key
decrypts stays as it was (a warning) until ``wearables vault rotate-key`` runs with its key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import stat
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors.oauth import TokenSet
from models.errors import ConfigurationError, WearablesError
from models.participants import ApiGeneration, LinkStatus, ParticipantLink
from models.providers import Provider
from runtime.keys import vault_fernet
from runtime.settings import Settings

__all__ = ["AccountLinkedElsewhere", "Link", "MisplacedCiphertext", "TokenVault", "open_vault"]

logger = logging.getLogger(__name__)

_metadata = sa.MetaData()
_links = sa.Table(
    "links", _metadata,
    sa.Column("research_id", sa.String(32), primary_key=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("api_generation", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # NULL once the participant unlinked or withdrew: nothing ties the row to the vendor account any more
    sa.Column("vendor_user_hash", sa.String(64), index=True),
    sa.Column("vendor_user_enc", sa.LargeBinary),
    sa.Column("access_enc", sa.LargeBinary),
    sa.Column("refresh_enc", sa.LargeBinary),
    sa.Column("expires_at", sa.Float),
    sa.Column("scope", sa.String(512)),
    sa.Column("timezone", sa.String(64)),
    sa.Column("linked_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
    sa.Column("token_version", sa.Integer, nullable=False, default=0),
    # space-separated data types not granted (unticked at consent, or refused with a missing scope)
    sa.Column("denied", sa.String(512), nullable=False, default="", server_default=""),
    # 1: written before ciphertexts were bound to their row (module docstring), 2: bound
    sa.Column("row_format", sa.Integer, nullable=False, server_default="1"),
)
# one vendor account, one live link: a webhook names the account and must reach one participant
_ONE_LINK_PER_ACCOUNT = sa.Index("uq_links_linked_vendor_user", _links.c.provider, _links.c.vendor_user_hash,
                                 unique=True, sqlite_where=sa.text("status = 'linked'"),
                                 postgresql_where=sa.text("status = 'linked'"))
_cursors = sa.Table(
    "cursors", _metadata,
    sa.Column("research_id", sa.String(32), primary_key=True),
    sa.Column("data_type", sa.String(64), primary_key=True),
    sa.Column("through_date", sa.String(10), nullable=False),  # every day up to it is published
    sa.Column("updated_at", sa.Float, nullable=False),
)


_READ_BATCH = 500  # research IDs per IN (...): far below every database's parameter limit
_ENCRYPTED = ("vendor_user_enc", "access_enc", "refresh_enc")  # the Fernet columns (rotate_keys)
_FORMAT = 2  # the row_format this code writes
_BOUND = b"wearables-vault-v2"  # first field of a bound payload: magic, research_id, column, value (NUL-separated)
_LOOKUP_LABEL = "vault-vendor-user-lookup"


class AccountLinkedElsewhere(WearablesError):
    """The vendor account is already linked to another research_id: the link is refused and the
    existing one kept (one account, one participant: webhooks name the account)."""

    def __init__(self, message: str, *, provider: Provider) -> None:
        super().__init__(message)
        self.provider = provider


class MisplacedCiphertext(ConfigurationError):
    """A ciphertext decrypts but was written for another row or column: the vault was tampered
    with (or copied about), and the value is refused."""


@dataclass(frozen=True, slots=True)
class Link:
    research_id: str
    provider: Provider
    api_generation: ApiGeneration
    status: LinkStatus
    timezone: str | None
    linked_at: float | None
    revoked_at: float | None
    denied_data_types: tuple[str, ...] = ()

    def record(self, key_id: str) -> ParticipantLink:
        """This link as a record of the ``participants`` topic (never tokens)."""
        return ParticipantLink(research_id=self.research_id, provider=self.provider,
                               api_generation=self.api_generation, status=self.status, key_id=key_id,
                               consented_at=self.linked_at, linked_at=self.linked_at, revoked_at=self.revoked_at,
                               withdrawn_at=self.revoked_at if self.status is LinkStatus.WITHDRAWN else None,
                               denied_data_types=self.denied_data_types)


class TokenVault:
    """The vault over an engine (``open_vault`` builds one from the settings).

    :param cipher: ``WEARABLES_VAULT_KEY`` (``runtime.keys.vault_fernet``).
    :param secret: ``WEARABLES_SECRET_KEY``: only a lookup key is derived from it (module docstring).
    """

    def __init__(self, engine: AsyncEngine, cipher: MultiFernet, secret: bytes) -> None:
        self._engine, self._cipher = engine, cipher
        self._lookup_key = _lookup_key(secret)
        self._legacy_lookup_key = secret  # row_format 1 hashed with the secret key itself (upgrade only)
        self._pending: dict[tuple[str, str], str] = {}  # cursor advances waiting for the next transaction
        self._joining: list[dict[str, str]] = []  # advances that must join on to the cursor (``after``), in order
        self._flushing: asyncio.Future[None] | None = None
        self._upsert_cursor = self._cursor_upsert()
        self._join_cursor = _cursors.update().where(
            _cursors.c.research_id == sa.bindparam("rid"), _cursors.c.data_type == sa.bindparam("kind"),
            _cursors.c.through_date < sa.bindparam("through"), _cursors.c.through_date >= sa.bindparam("after"),
        ).values(through_date=sa.bindparam("through"), updated_at=sa.bindparam("now"))
        # the same parameters as ``_join_cursor``: where that found no cursor, this makes one
        self._first_cursor = self._cursor_insert().values(
            research_id=sa.bindparam("rid"), data_type=sa.bindparam("kind"), through_date=sa.bindparam("through"),
            updated_at=sa.bindparam("now")).on_conflict_do_nothing(
            index_elements=[_cursors.c.research_id, _cursors.c.data_type])
        self._wanted: dict[str, asyncio.Future[sa.Row[Any] | None]] = {}  # link rows asked for, not yet read
        self._reading: asyncio.Future[None] | None = None
        self._denying = asyncio.Lock()  # denials are rare: one lock for all participants

    async def create(self) -> None:
        """Make the tables, or bring an older vault up to date (columns, NULLs allowed, bound rows,
        the one-link-per-account index)."""
        async with self._engine.begin() as conn:
            await conn.run_sync(_metadata.create_all)
            await conn.run_sync(_add_missing_columns)
            strict = await conn.run_sync(_vendor_user_not_null)
        if strict:
            await self._allow_null_vendor_user()
        await self._upgrade_rows()
        async with self._engine.begin() as conn:
            await conn.run_sync(_create_unique_index)

    async def close(self) -> None:
        await self._engine.dispose()

    def _hash_vendor_user(self, provider: Provider, vendor_user_id: str, *, key: bytes | None = None) -> str:
        return hmac.new(key or self._lookup_key, f"vendor-user\x00{provider.value}\x00{vendor_user_id}".encode(),
                        hashlib.sha256).hexdigest()

    def _enc(self, research_id: str, column: str, text: str) -> bytes:
        """Encrypt ``text`` bound to its row and column (module docstring)."""
        return self._cipher.encrypt(b"\x00".join((_BOUND, research_id.encode(), column.encode(), text.encode())))

    def _dec(self, blob: bytes, research_id: str, column: str, *, row_format: int = _FORMAT) -> str:
        try:
            payload = self._cipher.decrypt(blob)
        except InvalidToken:
            raise ConfigurationError("the vault's tokens do not decrypt with WEARABLES_VAULT_KEY "
                                     "(was the key changed?)") from None
        return _unbind(payload, research_id, column, row_format=row_format)

    # ------------------------------------------------------------------ links
    async def link(self, research_id: str, provider: Provider, vendor_user_id: str, tokens: TokenSet, *,
                   timezone: str | None = None, denied: tuple[str, ...] = ()) -> Link:
        """Store (or replace) a participant's link with fresh tokens; status ``linked``.

        :param denied: the data types this consent did not grant (not fetched).
        """
        generation = (ApiGeneration.FITBIT_WEB_API if provider is Provider.FITBIT
                      else ApiGeneration.GOOGLE_HEALTH_V4)
        now = time.time()
        lookup = self._hash_vendor_user(provider, vendor_user_id)
        row = {"research_id": research_id, "provider": provider.value, "api_generation": generation.value,
               "status": LinkStatus.LINKED.value, "vendor_user_hash": lookup,
               "vendor_user_enc": self._enc(research_id, "vendor_user_enc", vendor_user_id),
               "access_enc": self._enc(research_id, "access_enc", tokens.access_token),
               "refresh_enc": self._enc(research_id, "refresh_enc", tokens.refresh_token),
               "expires_at": tokens.expires_at, "scope": tokens.scope, "timezone": timezone, "linked_at": now,
               "revoked_at": None, "token_version": 0, "denied": " ".join(denied), "row_format": _FORMAT}
        taken = AccountLinkedElsewhere(f"this {provider.value} account is already linked to another participant",
                                       provider=provider)
        try:
            async with self._engine.begin() as conn:
                # the index refuses it too; the query also covers a vault whose old duplicates keep the
                # index from being made (create), and gives the error before any write
                other = (await conn.execute(sa.select(_links.c.research_id).where(
                    _links.c.provider == provider.value, _links.c.vendor_user_hash == lookup,
                    _links.c.status == LinkStatus.LINKED.value, _links.c.research_id != research_id))).first()
                if other is not None:
                    raise taken
                await conn.execute(_links.delete().where(_links.c.research_id == research_id))
                await conn.execute(_cursors.delete().where(_cursors.c.research_id == research_id))
                await conn.execute(_links.insert().values(**row))
        except sa.exc.IntegrityError:  # a concurrent link of the same account won the race
            raise taken from None
        return Link(research_id, provider, generation, LinkStatus.LINKED, timezone, now, None, denied)

    async def get(self, research_id: str) -> Link | None:
        row = await self._row(research_id)
        return None if row is None else _link(row)

    async def _row(self, research_id: str) -> sa.Row[Any] | None:
        """The participant's links row, read together with every other row asked for meanwhile.

        A scheduler asks for thousands of participants at once; one ``IN (...)`` query per batch
        costs a fraction of one query each. A read asked after a write joins a later batch, so it
        sees the write.
        """
        wanted = self._wanted.get(research_id)
        if wanted is None:
            wanted = self._wanted[research_id] = asyncio.get_running_loop().create_future()
            if self._reading is None or self._reading.done():
                self._reading = asyncio.ensure_future(self._read_rows())
        return await asyncio.shield(wanted)

    async def _read_rows(self) -> None:
        await asyncio.sleep(0)  # let the callers of this tick join the batch
        while self._wanted:
            batch, self._wanted = self._wanted, {}
            try:
                rows = {}
                ids = list(batch)
                async with self._engine.connect() as conn:
                    for at in range(0, len(ids), _READ_BATCH):
                        query = sa.select(_links).where(_links.c.research_id.in_(ids[at:at + _READ_BATCH]))
                        rows.update({row.research_id: row for row in await conn.execute(query)})
            except Exception as error:  # every waiter gets the error; the next batch may work
                for future in batch.values():
                    if not future.done():
                        future.set_exception(error)
                continue
            for research_id, future in batch.items():
                if not future.done():
                    future.set_result(rows.get(research_id))

    async def links(self, *, status: LinkStatus | None = LinkStatus.LINKED) -> list[Link]:
        query = sa.select(_links).order_by(_links.c.research_id)
        if status is not None:
            query = query.where(_links.c.status == status.value)
        async with self._engine.connect() as conn:
            return [_link(row) for row in await conn.execute(query)]

    async def link_counts(self) -> dict[tuple[str, str, str], int]:
        """{(provider, status, api_generation): links}, counted by the database (no row is read)."""
        columns = (_links.c.provider, _links.c.status, _links.c.api_generation)
        query = sa.select(*columns, sa.func.count()).group_by(*columns)
        async with self._engine.connect() as conn:
            return {(provider, status, generation): count
                    for provider, status, generation, count in await conn.execute(query)}

    async def find_vendor_user(self, provider: Provider, vendor_user_id: str, *,
                               revoked: bool = False) -> str | None:
        """The research_id linked to this vendor account (webhooks name the vendor's user); None
        when no live link has it (unlinked, withdrawn, or never linked).

        :param revoked: also a link the vendor revoked (the Fitbit Web API's switch-off revokes
            them all, and the participant's move to Google Health carries its research_id on).
        """
        statuses = [LinkStatus.LINKED.value, *([LinkStatus.REVOKED.value] if revoked else [])]
        query = sa.select(_links.c.research_id).where(
            _links.c.vendor_user_hash == self._hash_vendor_user(provider, vendor_user_id),
            _links.c.provider == provider.value, _links.c.status.in_(statuses),
        ).order_by((_links.c.status == LinkStatus.LINKED.value).desc(), _links.c.linked_at.desc()).limit(1)
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar()

    async def vendor_user(self, research_id: str) -> str | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(_links.c.vendor_user_enc, _links.c.row_format).where(
                _links.c.research_id == research_id))).first()
        if row is None or row.vendor_user_enc is None:
            return None
        return self._dec(row.vendor_user_enc, research_id, "vendor_user_enc", row_format=row.row_format)

    async def set_status(self, research_id: str, status: LinkStatus, *, provider: Provider | None = None,
                         forget_vendor_user: bool = False) -> None:
        """Revoked or withdrawn: the tokens are deleted with the status change. With ``provider``,
        only a link at that vendor changes (a revocation seen by a stale Fitbit fetch leaves the
        participant's new Google link alone).

        :param forget_vendor_user: also erase the vendor user ID and its lookup hash (the
            participant unlinked: nothing should tie the row to their account any more). Always so
            for ``withdrawn``. A revocation by the vendor keeps them, so that a move to Google
            Health can find the Fitbit link (``find_vendor_user(revoked=True)``).
        """
        values: dict[str, object] = {"status": status.value}
        if status is not LinkStatus.LINKED:
            values.update(access_enc=None, refresh_enc=None, expires_at=None, revoked_at=time.time())
        if forget_vendor_user or status is LinkStatus.WITHDRAWN:
            values.update(vendor_user_enc=None, vendor_user_hash=None)
        update = _links.update().where(_links.c.research_id == research_id)
        if provider is not None:
            update = update.where(_links.c.provider == provider.value)
        async with self._engine.begin() as conn:
            await conn.execute(update.values(**values))

    async def forget(self, research_id: str) -> int:
        """Delete the participant's row and cursors (a purge): rows removed (0 or 1)."""
        async with self._engine.begin() as conn:
            await conn.execute(_cursors.delete().where(_cursors.c.research_id == research_id))
            result = await conn.execute(_links.delete().where(_links.c.research_id == research_id))
        return int(result.rowcount or 0)

    async def last_sync(self, research_id: str) -> float | None:
        """When a fetch of theirs last published data (the newest cursor move), epoch seconds."""
        async with self._engine.connect() as conn:
            newest = (await conn.execute(sa.select(sa.func.max(_cursors.c.updated_at)).where(
                _cursors.c.research_id == research_id))).scalar()
        return None if newest is None else float(newest)

    async def new_links_since(self, provider: Provider, since: float) -> int:
        """Links to ``provider`` made since ``since`` (the daily budget of new grants)."""
        async with self._engine.connect() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(_links).where(
                _links.c.provider == provider.value, _links.c.linked_at >= since))).scalar() or 0)

    async def deny_data_type(self, research_id: str, data_type: str) -> Link | None:
        """The vendor refused ``data_type`` for a missing scope: stop asking until the participant
        consents again (a new ``link`` clears it). The updated link, or None if there is none."""
        async with self._denying:  # a read, then a write: two fetches denying at once must not lose one
            link = await self.get(research_id)
            if link is None or data_type in link.denied_data_types:
                return link
            denied = (*link.denied_data_types, data_type)
            async with self._engine.begin() as conn:
                await conn.execute(_links.update().where(_links.c.research_id == research_id).values(
                    denied=" ".join(denied)))
            return await self.get(research_id)

    # ------------------------------------------------------------------ tokens
    async def tokens(self, research_id: str, provider: Provider | None = None) -> tuple[TokenSet, int] | None:
        """The participant's tokens and their version (None when not linked, or, with ``provider``,
        linked at another vendor: a participant who moved from Fitbit to Google while a Fitbit
        fetch waited must not have Google's tokens sent to Fitbit)."""
        row = await self._row(research_id)
        if row is None or row.status != LinkStatus.LINKED.value or row.access_enc is None:
            return None
        if provider is not None and row.provider != provider.value:
            return None
        tokens = TokenSet(self._dec(row.access_enc, research_id, "access_enc", row_format=row.row_format),
                          self._dec(row.refresh_enc, research_id, "refresh_enc", row_format=row.row_format),
                          row.expires_at or 0.0, row.scope or "")
        return tokens, row.token_version

    async def rotate(self, research_id: str, tokens: TokenSet, *, version: int) -> bool:
        """Store refreshed tokens if nobody rotated them since ``version``; True when stored."""
        async with self._engine.begin() as conn:
            result = await conn.execute(_links.update().where(
                _links.c.research_id == research_id, _links.c.token_version == version,
                _links.c.status == LinkStatus.LINKED.value,
                _links.c.row_format == _FORMAT,  # an older row is upgraded when the vault opens
            ).values(access_enc=self._enc(research_id, "access_enc", tokens.access_token),
                     refresh_enc=self._enc(research_id, "refresh_enc", tokens.refresh_token),
                     expires_at=tokens.expires_at, scope=tokens.scope, token_version=version + 1))
        return result.rowcount == 1

    # ------------------------------------------------------------------ keys
    async def rotate_keys(self, *, batch: int = _READ_BATCH) -> int:
        """Re-encrypt every encrypted column of every link with the first key of
        ``WEARABLES_VAULT_KEY``, bound to its row, and recompute its lookup hash, one transaction
        per batch of rows; the rows re-encrypted. Safe to run while services write: a row changed
        since it was read is left as written (new writes use the first key already), and a second
        run changes nothing it needs to. A row no configured key decrypts is a ConfigurationError,
        one holding another row's ciphertext a MisplacedCiphertext (its batch is not written;
        earlier batches are): re-encrypting it here would make it look like its own."""
        return await self._reseal_rows(batch=batch, strict=True)

    async def _upgrade_rows(self, *, batch: int = _READ_BATCH) -> None:
        """Bind, re-hash and (if withdrawn) clear the rows written before row binding (module docstring)."""
        stuck = await self._reseal_rows(batch=batch, strict=False)
        if stuck:
            logger.warning("%d vault rows written before row binding do not decrypt with WEARABLES_VAULT_KEY: "
                           "they stay as they are until `wearables vault rotate-key` runs with their key", stuck)

    async def _reseal_rows(self, *, batch: int, strict: bool) -> int:
        """Strict: every row, the count re-encrypted. Not strict: the old-format rows only, a row
        that does not decrypt skipped; the count skipped."""
        done, skipped, after = 0, 0, ""
        columns = [_links.c.research_id, _links.c.provider, _links.c.status, _links.c.row_format,
                   _links.c.vendor_user_hash, *(_links.c[name] for name in _ENCRYPTED)]
        while True:
            query = sa.select(*columns).where(_links.c.research_id > after)
            if not strict:
                query = query.where(_links.c.row_format < _FORMAT)
            async with self._engine.begin() as conn:
                rows = (await conn.execute(query.order_by(_links.c.research_id).limit(batch))).all()
                if not rows:
                    return done if strict else skipped
                for row in rows:
                    try:
                        new = self._resealed(row)
                    except ConfigurationError:
                        if strict:
                            raise
                        skipped += 1
                        continue
                    result = await conn.execute(_links.update().where(
                        _links.c.research_id == row.research_id, _links.c.row_format == row.row_format,
                        _links.c.vendor_user_hash.is_not_distinct_from(row.vendor_user_hash),
                        *(_links.c[name].is_not_distinct_from(getattr(row, name)) for name in _ENCRYPTED),
                    ).values(**new))
                    done += int(result.rowcount or 0)
                after = rows[-1].research_id

    def _resealed(self, row: sa.Row[Any]) -> dict[str, object]:
        """The row's encrypted columns under the first key and bound to it, its lookup hash with the
        lookup key; a withdrawn row loses its vendor user ID."""
        new: dict[str, object] = {"row_format": _FORMAT}
        for name in _ENCRYPTED:
            blob = getattr(row, name)
            if blob is None:
                new[name] = None
                continue
            try:
                payload = self._cipher.decrypt(blob)
            except InvalidToken:
                raise ConfigurationError("the vault holds tokens that no key of WEARABLES_VAULT_KEY decrypts: add the "
                                         "key they were encrypted with after the new one (WEARABLES_VAULT_KEY=new,old) "
                                         "and run again") from None
            text = _unbind(payload, row.research_id, name, row_format=row.row_format)
            new[name] = self._enc(row.research_id, name, text)
            if name == "vendor_user_enc":
                new["vendor_user_hash"] = self._hash_vendor_user(Provider(row.provider), text)
        if row.vendor_user_enc is None or row.status == LinkStatus.WITHDRAWN.value:
            new.update(vendor_user_enc=None, vendor_user_hash=None)
        return new

    async def undecryptable(self) -> int:
        """Links with an encrypted column that none of this vault's keys decrypts, or that holds
        another row's ciphertext (0: all readable)."""
        bad = 0
        async with self._engine.connect() as conn:
            rows = await conn.execute(sa.select(_links.c.research_id, _links.c.row_format,
                                                *(_links.c[name] for name in _ENCRYPTED)))
            for row in rows:
                try:
                    for name in _ENCRYPTED:
                        if getattr(row, name) is not None:
                            self._dec(getattr(row, name), row.research_id, name, row_format=row.row_format)
                except ConfigurationError:
                    bad += 1
        return bad

    async def _allow_null_vendor_user(self) -> None:
        """A vault made when the vendor user columns were NOT NULL: drop the constraint (SQLite
        cannot alter a column: the table is rebuilt, in one transaction)."""
        async with self._engine.connect() as conn:
            if self._engine.dialect.name == "sqlite":
                await conn.exec_driver_sql("BEGIN IMMEDIATE")  # DDL too: pysqlite begins only before DML
                await conn.run_sync(_rebuild_sqlite_links)
            else:
                for name in ("vendor_user_hash", "vendor_user_enc"):
                    await conn.execute(sa.text(f"ALTER TABLE {_links.name} ALTER COLUMN {name} DROP NOT NULL"))
            await conn.commit()

    # ------------------------------------------------------------------ cursors
    async def cursor(self, research_id: str, data_type: str) -> str | None:
        async with self._engine.connect() as conn:
            return (await conn.execute(sa.select(_cursors.c.through_date).where(
                _cursors.c.research_id == research_id, _cursors.c.data_type == data_type))).scalar()

    async def cursors(self) -> dict[tuple[str, str], str]:
        """Every cursor, {(research_id, data_type): through_date}: a poll round reads them at once."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(sa.select(_cursors.c.research_id, _cursors.c.data_type,
                                                _cursors.c.through_date))
            return {(row.research_id, row.data_type): row.through_date for row in rows}

    async def advance_cursor(self, research_id: str, data_type: str, through_date: str, *,
                             after: str | None = None) -> None:
        """Move the cursor forward (never back) to ``through_date``; on disk when this returns.

        ``after``: the day before the first day the caller read. Then the cursor moves only if it
        is there already at least as far as ``after`` (the days read join on to it), or there is
        none yet (then it is made): a poll computed from the cursor, finishing after a failed
        webhook fetch held the cursor back behind the poll's first day (``hold_cursor``), leaves
        the hold in place instead of jumping over the day the webhook could not read.

        Group commit: the advances that arrive while one transaction runs share the next one,
        so thousands of fetches finishing together cost a few transactions, not one each.
        """
        key = (research_id, data_type)
        if after is not None:
            self._joining.append({"rid": research_id, "kind": data_type, "through": through_date, "after": after})
        elif through_date > self._pending.get(key, ""):
            self._pending[key] = through_date
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush_cursors())
        await asyncio.shield(self._flushing)

    async def hold_cursor(self, research_id: str, data_type: str, through_date: str) -> None:
        """Move the cursor back to ``through_date`` if it is past it (never forward, never made):
        a day a webhook's fetch failed on, behind a cursor that polls already passed, is read
        again by the next poll, which starts a little before the cursor."""
        if self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)  # an advance already under way lands first
        async with self._engine.begin() as conn:
            await conn.execute(_cursors.update().where(
                _cursors.c.research_id == research_id, _cursors.c.data_type == data_type,
                _cursors.c.through_date > through_date).values(through_date=through_date, updated_at=time.time()))

    async def _flush_cursors(self) -> None:
        while self._pending or self._joining:
            batch, self._pending = self._pending, {}
            joining, self._joining = self._joining, []
            rows = [{"research_id": rid, "data_type": kind, "through_date": through, "updated_at": time.time()}
                    for (rid, kind), through in batch.items()]
            async with self._engine.begin() as conn:
                if rows:
                    await conn.execute(self._upsert_cursor, rows)
                if joining:  # one conditional UPDATE per advance, in arrival order (executemany)
                    params = [{**row, "now": time.time()} for row in joining]
                    await conn.execute(self._join_cursor, params)
                    await conn.execute(self._first_cursor, params)

    def _cursor_insert(self) -> sqlite_dialect.Insert | postgresql_dialect.Insert:
        """An INSERT into ``cursors`` in the engine's dialect (both have ON CONFLICT)."""
        return (sqlite_insert if self._engine.dialect.name == "sqlite" else postgresql_insert)(_cursors)

    def _cursor_upsert(self) -> sa.Insert:
        insert = self._cursor_insert()
        return insert.on_conflict_do_update(
            index_elements=[_cursors.c.research_id, _cursors.c.data_type],
            set_={"through_date": insert.excluded.through_date, "updated_at": insert.excluded.updated_at},
            where=_cursors.c.through_date < insert.excluded.through_date)


def _lookup_key(secret: bytes) -> bytes:
    """The vendor-user lookup key: derived from the secret key under its own label, as
    ``runtime.keys`` derives its keys (purpose, NUL, secret)."""
    return hashlib.sha256(_LOOKUP_LABEL.encode() + b"\x00" + secret).digest()


def _unbind(payload: bytes, research_id: str, column: str, *, row_format: int) -> str:
    """The value of a decrypted payload, if it was written for this row and column."""
    fields = payload.split(b"\x00", 3)
    if len(fields) == 4 and fields[0] == _BOUND:
        if fields[1] == research_id.encode() and fields[2] == column.encode():
            return fields[3].decode()
    elif row_format < _FORMAT:
        return payload.decode()  # written before binding; the upgrade binds it
    # no research_id in the message: it reaches logs
    raise MisplacedCiphertext(f"a {column} ciphertext of the vault was written for another row or column: refused "
                              "(was the vault database edited?)")


def _link(row: sa.Row[Any]) -> Link:
    return Link(research_id=row.research_id, provider=Provider(row.provider),
                api_generation=ApiGeneration(row.api_generation), status=LinkStatus(row.status),
                timezone=row.timezone, linked_at=row.linked_at, revoked_at=row.revoked_at,
                denied_data_types=tuple((row.denied or "").split()))


def _add_missing_columns(connection: sa.Connection) -> None:
    """Columns added since a vault was created (``create_all`` makes missing tables, not columns)."""
    present = {column["name"] for column in sa.inspect(connection).get_columns(_links.name)}
    for column in _links.columns:
        if column.name not in present:
            kind = column.type.compile(dialect=connection.dialect)
            default = f" DEFAULT {column.server_default.arg!r}" if column.server_default is not None else ""  # type: ignore[attr-defined]  # DefaultClause has .arg
            connection.execute(sa.text(f"ALTER TABLE {_links.name} ADD COLUMN {column.name} {kind}{default}"))


def _vendor_user_not_null(connection: sa.Connection) -> bool:
    columns = {c["name"]: c for c in sa.inspect(connection).get_columns(_links.name)}
    return not (columns["vendor_user_hash"]["nullable"] and columns["vendor_user_enc"]["nullable"])


def _rebuild_sqlite_links(connection: sa.Connection) -> None:
    """SQLite's way to change a column's constraint: a new table, the rows copied, the old one dropped."""
    if not _vendor_user_not_null(connection):
        return  # another process did it first
    present = [c["name"] for c in sa.inspect(connection).get_columns(_links.name)]
    connection.exec_driver_sql(f"ALTER TABLE {_links.name} RENAME TO {_links.name}_before_nulls")
    for reflected in sa.inspect(connection).get_indexes(f"{_links.name}_before_nulls"):
        connection.exec_driver_sql(f'DROP INDEX "{reflected["name"]}"')
    connection.execute(sa.schema.CreateTable(_links))
    for index in _links.indexes:
        if index is not _ONE_LINK_PER_ACCOUNT:  # made after the upgrade, which re-hashes (create)
            index.create(connection)
    names = [name for name in present if name in _links.c]
    before = sa.table(f"{_links.name}_before_nulls", *(sa.column(name) for name in names))
    connection.execute(_links.insert().from_select(names, sa.select(*before.c)))
    connection.exec_driver_sql(f"DROP TABLE {_links.name}_before_nulls")


def _create_unique_index(connection: sa.Connection) -> None:
    """One live link per vendor account; a vault that already links an account twice keeps
    working without the index (``link`` still refuses new duplicates) and says so."""
    if any(index["name"] == _ONE_LINK_PER_ACCOUNT.name for index in sa.inspect(connection).get_indexes(_links.name)):
        return
    try:
        if connection.dialect.name == "sqlite":  # a failed CREATE INDEX leaves a SQLite transaction usable
            _ONE_LINK_PER_ACCOUNT.create(connection)
        else:
            with connection.begin_nested():
                _ONE_LINK_PER_ACCOUNT.create(connection)
    except sa.exc.IntegrityError:
        logger.warning("the vault links a vendor account to more than one research id: unlink all but one "
                       "(`wearables withdraw`) so that the unique index %s can be made", _ONE_LINK_PER_ACCOUNT.name)


def _sqlite_pragmas(connection: DBAPIConnection, _: object) -> None:
    # WAL: readers never wait for the writer. FULL: each commit is synced before it returns; NORMAL
    # would sync only at checkpoints, and a power cut could undo a commit, such as a rotation of a
    # single-use refresh token that the vendor has already consumed (the participant lost)
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # a purged participant's row is overwritten on disk, not only unlinked from the page (builds differ)
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


_OWNER_ONLY = stat.S_IRUSR | stat.S_IWUSR  # 0600


def _private_sqlite_file(database: str) -> None:
    """Create the SQLite file readable by its owner only (SQLite gives its -wal and -shm files the
    database's mode), and take group and other access away from an existing one and its companions."""
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, _OWNER_ONLY))  # an empty file is a database
    except FileExistsError:
        pass
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if each.stat().st_mode & 0o077:
                each.chmod(_OWNER_ONLY)
        except FileNotFoundError:
            continue
        except PermissionError:  # not ours: say so, the vault still opens
            logger.warning("cannot make %s readable by its owner only", each.name)


def _shown(url: sa.URL) -> str:
    """A vault URL fit for a log line or an error message: never its password."""
    return url.render_as_string(hide_password=True)


@asynccontextmanager
async def open_vault(settings: Settings) -> AsyncIterator[TokenVault]:
    try:
        url = sa.engine.make_url(settings.vault_database_url)
    except (sa.exc.ArgumentError, ValueError):  # the message would not help, and the URL may hold a password
        raise ConfigurationError("WEARABLES_VAULT_URL is not a database URL (not shown: it may hold a password)") \
            from None
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        _private_sqlite_file(url.database)
    # Thousands of fetches may want the vault at once: they queue for a pooled connection for as
    # long as it takes (SQLAlchemy's default gives up after 30 s and the fetch would fail). SQLite
    # has one writer at a time anyway, so a fixed pool (no connection/thread churn) and a busy
    # timeout instead of "database is locked".
    try:
        if sqlite:
            engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=8, max_overflow=0,
                                         pool_timeout=None)
        else:
            engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_timeout=None)
    except (sa.exc.ArgumentError, ImportError) as error:  # e.g. an unknown dialect or driver
        raise ConfigurationError(f"the vault URL {_shown(url)} cannot be used ({type(error).__name__})") from None
    if sqlite:
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    logger.debug("vault at %s", _shown(engine.url))
    vault = TokenVault(engine, vault_fernet(settings), settings.require_secret_key())
    try:
        await vault.create()
        yield vault
    finally:
        await vault.close()
