"""The token vault: who is linked to which vendor account, their tokens, and fetch cursors.

Tokens and vendor user IDs are encrypted at rest with Fernet (``cryptography``; key from
``WEARABLES_VAULT_KEY``). Webhooks name the vendor's user, so that ID is also stored as a keyed
HMAC for lookup. ``WEARABLES_VAULT_KEY`` may list several keys (``runtime/keys.py``): the first
encrypts, all decrypt. SQLite by default, PostgreSQL by URL (SQLAlchemy Core, async drivers); every
write is one transaction, so a rotated refresh token is on disk before anyone uses the new
access token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors.oauth import TokenSet
from models.errors import ConfigurationError
from models.participants import ApiGeneration, LinkStatus, ParticipantLink
from models.providers import Provider
from runtime.keys import vault_fernet
from runtime.settings import Settings

__all__ = ["Link", "TokenVault", "open_vault"]

_metadata = sa.MetaData()
_links = sa.Table(
    "links", _metadata,
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
    # space-separated data types not granted (unticked at consent, or refused with a missing scope)
    sa.Column("denied", sa.String(512), nullable=False, default="", server_default=""),
)
_cursors = sa.Table(
    "cursors", _metadata,
    sa.Column("research_id", sa.String(32), primary_key=True),
    sa.Column("data_type", sa.String(64), primary_key=True),
    sa.Column("through_date", sa.String(10), nullable=False),  # every day up to it is published
    sa.Column("updated_at", sa.Float, nullable=False),
)


_READ_BATCH = 500  # research IDs per IN (...): far below every database's parameter limit
_ENCRYPTED = ("vendor_user_enc", "access_enc", "refresh_enc")  # the Fernet columns (rotate_keys)


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
    def __init__(self, engine: AsyncEngine, cipher: MultiFernet, secret: bytes) -> None:
        self._engine, self._cipher, self._secret = engine, cipher, secret
        self._pending: dict[tuple[str, str], str] = {}  # cursor advances waiting for the next transaction
        self._flushing: asyncio.Future[None] | None = None
        self._upsert_cursor = self._cursor_upsert()
        self._wanted: dict[str, asyncio.Future[sa.Row[Any] | None]] = {}  # link rows asked for, not yet read
        self._reading: asyncio.Future[None] | None = None
        self._denying = asyncio.Lock()  # denials are rare: one lock for all participants

    async def create(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(_metadata.create_all)
            await conn.run_sync(_add_missing_columns)

    async def close(self) -> None:
        await self._engine.dispose()

    def _hash_vendor_user(self, provider: Provider, vendor_user_id: str) -> str:
        return hmac.new(self._secret, f"vendor-user\x00{provider.value}\x00{vendor_user_id}".encode(),
                        hashlib.sha256).hexdigest()

    def _enc(self, text: str) -> bytes:
        return self._cipher.encrypt(text.encode())

    def _dec(self, blob: bytes) -> str:
        try:
            return self._cipher.decrypt(blob).decode()
        except InvalidToken:
            raise ConfigurationError("the vault's tokens do not decrypt with WEARABLES_VAULT_KEY "
                                     "(was the key changed?)") from None

    # ------------------------------------------------------------------ links
    async def link(self, research_id: str, provider: Provider, vendor_user_id: str, tokens: TokenSet, *,
                   timezone: str | None = None, denied: tuple[str, ...] = ()) -> Link:
        """Store (or replace) a participant's link with fresh tokens; status ``linked``.

        :param denied: the data types this consent did not grant (not fetched).
        """
        generation = (ApiGeneration.FITBIT_WEB_API if provider is Provider.FITBIT
                      else ApiGeneration.GOOGLE_HEALTH_V4)
        now = time.time()
        row = {"research_id": research_id, "provider": provider.value, "api_generation": generation.value,
               "status": LinkStatus.LINKED.value, "vendor_user_hash": self._hash_vendor_user(provider, vendor_user_id),
               "vendor_user_enc": self._enc(vendor_user_id), "access_enc": self._enc(tokens.access_token),
               "refresh_enc": self._enc(tokens.refresh_token), "expires_at": tokens.expires_at,
               "scope": tokens.scope, "timezone": timezone, "linked_at": now, "revoked_at": None,
               "token_version": 0, "denied": " ".join(denied)}
        async with self._engine.begin() as conn:
            await conn.execute(_links.delete().where(_links.c.research_id == research_id))
            await conn.execute(_cursors.delete().where(_cursors.c.research_id == research_id))
            await conn.execute(_links.insert().values(**row))
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

    async def find_vendor_user(self, provider: Provider, vendor_user_id: str) -> str | None:
        """The research_id linked to this vendor account (webhooks name the vendor's user)."""
        query = sa.select(_links.c.research_id).where(
            _links.c.vendor_user_hash == self._hash_vendor_user(provider, vendor_user_id),
            _links.c.provider == provider.value)
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar()

    async def vendor_user(self, research_id: str) -> str | None:
        async with self._engine.connect() as conn:
            blob = (await conn.execute(sa.select(_links.c.vendor_user_enc).where(
                _links.c.research_id == research_id))).scalar()
        return None if blob is None else self._dec(blob)

    async def set_status(self, research_id: str, status: LinkStatus, *, provider: Provider | None = None) -> None:
        """Revoked or withdrawn: the tokens are deleted with the status change. With ``provider``,
        only a link at that vendor changes (a revocation seen by a stale Fitbit fetch leaves the
        participant's new Google link alone)."""
        values: dict[str, object] = {"status": status.value}
        if status is not LinkStatus.LINKED:
            values.update(access_enc=None, refresh_enc=None, expires_at=None, revoked_at=time.time())
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
        tokens = TokenSet(self._dec(row.access_enc), self._dec(row.refresh_enc), row.expires_at or 0.0,
                          row.scope or "")
        return tokens, row.token_version

    async def rotate(self, research_id: str, tokens: TokenSet, *, version: int) -> bool:
        """Store refreshed tokens if nobody rotated them since ``version``; True when stored."""
        async with self._engine.begin() as conn:
            result = await conn.execute(_links.update().where(
                _links.c.research_id == research_id, _links.c.token_version == version,
                _links.c.status == LinkStatus.LINKED.value,
            ).values(access_enc=self._enc(tokens.access_token), refresh_enc=self._enc(tokens.refresh_token),
                     expires_at=tokens.expires_at, scope=tokens.scope, token_version=version + 1))
        return result.rowcount == 1

    # ------------------------------------------------------------------ keys
    async def rotate_keys(self, *, batch: int = _READ_BATCH) -> int:
        """Re-encrypt every encrypted column of every link with the first key of
        ``WEARABLES_VAULT_KEY`` (``MultiFernet.rotate``), one transaction per batch of rows; the
        rows re-encrypted. Safe to run while services write: a row changed since it was read is
        left as written (new writes use the first key already), and a second run changes nothing
        it needs to. A row no configured key decrypts is a ConfigurationError (its batch is not
        written; earlier batches are)."""
        rotated, after = 0, ""
        columns = [_links.c[name] for name in _ENCRYPTED]
        while True:
            async with self._engine.begin() as conn:
                rows = (await conn.execute(sa.select(_links.c.research_id, *columns).where(
                    _links.c.research_id > after).order_by(_links.c.research_id).limit(batch))).all()
                if not rows:
                    return rotated
                for row in rows:
                    old = {name: getattr(row, name) for name in _ENCRYPTED}
                    new = {name: None if blob is None else self._rotate(blob) for name, blob in old.items()}
                    result = await conn.execute(_links.update().where(
                        _links.c.research_id == row.research_id,
                        *(_links.c[name].is_not_distinct_from(blob) for name, blob in old.items()),
                    ).values(**new))
                    rotated += int(result.rowcount or 0)
                after = rows[-1].research_id

    async def undecryptable(self) -> int:
        """Links with an encrypted column that none of this vault's keys decrypts (0: all readable)."""
        bad = 0
        async with self._engine.connect() as conn:
            for row in await conn.execute(sa.select(*(_links.c[name] for name in _ENCRYPTED))):
                try:
                    for blob in row:
                        if blob is not None:
                            self._cipher.decrypt(blob)
                except InvalidToken:
                    bad += 1
        return bad

    def _rotate(self, blob: bytes) -> bytes:
        try:
            return self._cipher.rotate(blob)
        except InvalidToken:
            raise ConfigurationError("the vault holds tokens that no key of WEARABLES_VAULT_KEY decrypts: add the key "
                                     "they were encrypted with after the new one (WEARABLES_VAULT_KEY=new,old) and "
                                     "run again") from None

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

    async def advance_cursor(self, research_id: str, data_type: str, through_date: str) -> None:
        """Move the cursor forward (never back) to ``through_date``; on disk when this returns.

        Group commit: the advances that arrive while one transaction runs share the next one,
        so thousands of fetches finishing together cost a few transactions, not one each.
        """
        key = (research_id, data_type)
        if through_date > self._pending.get(key, ""):
            self._pending[key] = through_date
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush_cursors())
        await asyncio.shield(self._flushing)

    async def _flush_cursors(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            rows = [{"research_id": rid, "data_type": kind, "through_date": through, "updated_at": time.time()}
                    for (rid, kind), through in batch.items()]
            async with self._engine.begin() as conn:
                await conn.execute(self._upsert_cursor, rows)

    def _cursor_upsert(self) -> sa.Insert:
        insert = (sqlite_insert if self._engine.dialect.name == "sqlite" else postgresql_insert)(_cursors)
        return insert.on_conflict_do_update(
            index_elements=[_cursors.c.research_id, _cursors.c.data_type],
            set_={"through_date": insert.excluded.through_date, "updated_at": insert.excluded.updated_at},
            where=_cursors.c.through_date < insert.excluded.through_date)


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


def _sqlite_pragmas(connection: DBAPIConnection, _: object) -> None:
    # WAL: readers never wait for the writer; NORMAL: durable at each checkpoint, not each commit,
    # which is the trade SQLite documents for WAL (a power cut may lose the last commits, never corrupt)
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # a purged participant's row is overwritten on disk, not only unlinked from the page (builds differ)
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@asynccontextmanager
async def open_vault(settings: Settings) -> AsyncIterator[TokenVault]:
    url = settings.vault_database_url
    if url.startswith("sqlite"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    # Thousands of fetches may want the vault at once: they queue for a pooled connection for as
    # long as it takes (SQLAlchemy's default gives up after 30 s and the fetch would fail). SQLite
    # has one writer at a time anyway, so a fixed pool (no connection/thread churn) and a busy
    # timeout instead of "database is locked".
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=8, max_overflow=0,
                                     pool_timeout=None)
    else:
        engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_timeout=None)
    if url.startswith("sqlite"):
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    vault = TokenVault(engine, vault_fernet(settings), settings.require_secret_key())
    await vault.create()
    try:
        yield vault
    finally:
        await vault.close()
