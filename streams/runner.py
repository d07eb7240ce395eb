"""The stream worker as a :class:`~runtime.service.Service`: a Faust app inside the current event
loop (no Faust Worker, no signal handlers of its own).

``wearables worker``, the demo, the replay, the benchmark's worker processes and the
integration tests all run this, so a worker in a test is the same code as one in production.

    async with WorkerService(settings, bootstrap=bootstrap).running() as worker:
        worker.pipeline.progress.get("raw_pages")

A worker whose Faust app crashed (a table store that cannot be opened, an agent that halted on
a Kafka failure) ends: ``wait()`` raises :class:`WorkerCrashed`, ``/readyz`` fails, and the
command exits non-zero so that its supervisor restarts it. A store that is damaged is moved
aside before the app starts (:func:`set_aside_damaged_stores`); Faust then rebuilds it from the
table's changelog. A store ahead of its changelog (the broker lost the topic's records:
:func:`stores_ahead_of`) first writes its records back into the changelog (:func:`reseed_changelog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import rocksdict
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY, CollectorRegistry

from models.errors import WearablesError
from runtime.kafka import make_consumer, make_producer
from runtime.metrics import gauge
from runtime.service import Service
from runtime.settings import Settings
from streams.app import Pipeline, build_pipeline

__all__ = ["WorkerCrashed", "WorkerService", "reseed_changelog", "set_aside_damaged_stores", "stores_ahead_of"]

logger = logging.getLogger(__name__)

WORKER_PAGES = gauge("worker_raw_pages_seen", "Raw pages this worker process has consumed")
WORKER_READY = gauge("worker_ready", "1 once this worker has joined its group and recovered its tables")
STORES_SET_ASIDE = gauge("worker_stores_set_aside", "Table stores found damaged and moved aside at the last start")
_GAUGE_INTERVAL_S = 5.0
_FAUST_OFFSET_KEY = b"__faust\0offset__"  # where faust.stores.rocksdb keeps the changelog offset it applied


class WorkerCrashed(WearablesError):
    """The worker's Faust app crashed; the message says why and what happens next."""


class WorkerService(Service):
    """The normalize → dedup → daily agents of one worker process.

    :param settings: the run's settings (the pipeline reads its Kafka, daily and store settings).
    :param bootstrap: the Kafka to use; :func:`runtime.kafka.resolve_bootstrap` when None.
    :param registry: where Faust's own metrics go (tests give each app its own).

    Ready once the app has started, that is, joined its consumer group and recovered its tables,
    and until it stops or crashes; ``wait()`` raises :class:`WorkerCrashed` when it crashed.
    """

    name = "worker"

    def __init__(self, settings: Settings, *, bootstrap: str | None = None,
                 registry: CollectorRegistry = REGISTRY) -> None:
        super().__init__()
        self._settings, self._bootstrap, self._registry = settings, bootstrap, registry
        self._pipeline: Pipeline | None = None
        self._gauges: asyncio.Task[None] | None = None

    @property
    def pipeline(self) -> Pipeline:
        assert self._pipeline is not None, "the worker is not started"
        return self._pipeline

    async def start(self) -> None:
        self._pipeline = build_pipeline(self._settings, bootstrap=self._bootstrap, registry=self._registry)
        if self._settings.store.startswith("rocksdb"):
            # blocking file I/O (each store is read through once): off the event loop
            tabledir = Path(self._pipeline.app.conf.tabledir)
            aside = await asyncio.to_thread(set_aside_damaged_stores, tabledir)
            ends = await _changelog_ends(self._settings, self._bootstrap, tabledir)
            for store, table, partition in await asyncio.to_thread(stores_ahead_of, tabledir, ends or {}):
                if ends is not None:
                    aside.append(await reseed_changelog(self._settings, self._bootstrap, store, table, partition))
            STORES_SET_ASIDE.set(len(aside))
        await self._pipeline.app.start()
        WORKER_READY.set(1)
        self._gauges = asyncio.ensure_future(self._keep_gauges())
        logger.info("worker %s started", self._settings.app_id)

    def ready(self) -> bool:
        app = self._pipeline.app if self._pipeline is not None else None
        return super().ready() and app is not None and not app.should_stop

    async def wait(self) -> None:
        """Return when ``stop`` was called; raise :class:`WorkerCrashed` if the app crashed or stopped
        on its own (a worker never has a reason to end by itself)."""
        ended = asyncio.ensure_future(self._ended.wait())
        app_done = asyncio.ensure_future(self.pipeline.app.wait_until_stopped())
        try:
            await asyncio.wait({ended, app_done}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (ended, app_done):
                pending.cancel()
        if self._ended.is_set():
            return
        WORKER_READY.set(0)
        raise WorkerCrashed(_crash_message(self.pipeline.app.crash_reason))

    async def _keep_gauges(self) -> None:
        while True:
            WORKER_PAGES.set(self.pipeline.progress.get("raw_pages"))
            await asyncio.sleep(_GAUGE_INTERVAL_S)

    async def stop(self) -> None:
        WORKER_READY.set(0)
        if self._gauges is not None:
            self._gauges.cancel()
        if self._pipeline is not None:
            await self._pipeline.app.stop()
            logger.info("worker %s stopped", self._settings.app_id)


def _crash_message(reason: BaseException | None) -> str:
    what = "it stopped on its own" if reason is None else f"{type(reason).__name__}: {str(reason)[:300]}"
    return (f"the worker's Faust app crashed ({what}); exiting so that the supervisor restarts it. A damaged "
            "table store is moved aside at the next start and rebuilt from its changelog; if the error is "
            "Kafka's, check the brokers")


def set_aside_damaged_stores(tabledir: Path) -> list[Path]:
    """Move each RocksDB store under ``tabledir`` that cannot be read aside, to ``<dir>.corrupt-<UTC time>``;
    return their new paths.

    A store is opened read-only and read through with checksums verified: a damaged ``CURRENT``
    or ``MANIFEST`` fails the open, and a damaged SST file fails the read (opening alone does
    not notice it, and an iterator then silently stops early). Faust creates an empty store in
    its place and restores it from the table's changelog, as for a partition new to this worker.
    A store locked by another process is in use there and left alone.
    """
    moved = []
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for path in sorted(tabledir.glob("*.db")) if tabledir.is_dir() else []:
        if not path.is_dir() or _locked_elsewhere(path):
            continue
        problem = _store_problem(path)
        if problem is None:
            continue
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        path.rename(target)
        moved.append(target)
        logger.warning("table store %s cannot be read (%s); moved it to %s, it is rebuilt from its changelog",
                       path, problem[:200], target.name)
    return moved


def stores_ahead_of(tabledir: Path, ends: Mapping[tuple[str, int], int]) -> list[tuple[Path, str, int]]:
    """The stores under ``tabledir`` whose persisted changelog offset is past their changelog's
    end, as (path, table, partition); ``ends``: the end offset of each (table, partition)
    changelog, 0 for one that does not exist.

    A store ahead of its changelog means the topic lost records (deleted and made again; the
    embedded broker keeps nothing across a restart). Faust refuses to start on such a store
    (``ConsistencyError``), and rebuilding it from what is left would lose the day states: the
    next page of a day would then be summarized without the rest of the day and overwrite its
    complete row in the dataset. So :meth:`WorkerService.start` writes such a store's records
    back into its changelog partition first (the store holds the very bytes the changelog held)
    and then moves the store aside, to ``<dir>.ahead-<UTC time>``; Faust restores it from the
    changelog as for any partition new to this worker.
    """
    found = []
    for path in sorted(tabledir.glob("*.db")) if tabledir.is_dir() else []:
        name, _, partition = path.name.removesuffix(".db").rpartition("-")
        if not path.is_dir() or not partition.isdigit() or _locked_elsewhere(path):
            continue
        persisted, end = _persisted_offset(path), ends.get((name, int(partition)), 0)
        if persisted is not None and persisted >= end:
            found.append((path, name, int(partition)))
    return found


async def reseed_changelog(settings: Settings, bootstrap: str | None, store: Path, table: str,
                           partition: int) -> Path:
    """Write every record of ``store`` into its changelog partition, acknowledged, then move the
    store aside (``<dir>.ahead-<UTC time>``, kept until an operator removes it); its new path."""
    records = await asyncio.to_thread(_records_of, store)
    topic = f"{settings.app_id}-{table}-changelog"
    producer = make_producer(settings, bootstrap)
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key, partition=partition) for key, value in records]
        await asyncio.gather(*sent)  # a failure raises: the store stays where it is for the next start
    finally:
        await producer.stop()
    target = store.with_name(f"{store.name}.ahead-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    store.rename(target)
    logger.warning("table store %s was ahead of its changelog (the broker lost its records): wrote its %d records "
                   "back to %s[%d] and moved it to %s", store.name, len(records), topic, partition, target.name)
    return target


def _records_of(store: Path) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of a store but Faust's own offset record."""
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(False)
    db = rocksdict.Rdict(str(store), options=options, access_type=rocksdict.AccessType.read_only())
    try:
        return [(k, v) for k, v in db.items()
                if isinstance(k, bytes) and isinstance(v, bytes) and k != _FAUST_OFFSET_KEY]
    finally:
        db.close()


def _persisted_offset(path: Path) -> int | None:
    """The changelog offset Faust recorded in the store (``RocksDB.offset_key``), or None."""
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(False)
    try:
        db = rocksdict.Rdict(str(path), options=options, access_type=rocksdict.AccessType.read_only())
    except Exception:  # rocksdict raises a bare Exception; a damaged store was handled before
        return None
    try:
        value = db.get(_FAUST_OFFSET_KEY)
    finally:
        db.close()
    return int(value) if isinstance(value, bytes) and value.isdigit() else None


async def _changelog_ends(settings: Settings, bootstrap: str | None, tabledir: Path
                          ) -> dict[tuple[str, int], int] | None:
    """End offsets of the changelogs of the stores under ``tabledir`` (0 where a topic is missing);
    None when Kafka cannot be asked now (Faust then checks at recovery, and the worker crashes
    with its reason if a store is ahead)."""
    stores = sorted(tabledir.glob("*.db")) if tabledir.is_dir() else []
    tables = {path.name.removesuffix(".db").rpartition("-")[0] for path in stores}
    if not tables:
        return {}
    consumer = make_consumer(settings, bootstrap=bootstrap)
    try:
        await asyncio.wait_for(consumer.start(), 30)
        ends: dict[tuple[str, int], int] = {}
        for table in sorted(tables):
            topic = f"{settings.app_id}-{table}-changelog"
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            for tp, end in (await consumer.end_offsets(partitions)).items() if partitions else ():
                ends[(table, tp.partition)] = end
        return ends
    except (KafkaError, OSError, TimeoutError) as error:
        logger.warning("could not read the changelogs' end offsets (%s): stores are not checked against them",
                       type(error).__name__)
        return None
    finally:
        await consumer.stop()


def _store_problem(path: Path) -> str | None:
    """Why the RocksDB store at ``path`` cannot be read, or None if every record reads back."""
    options = rocksdict.Options(raw_mode=True)  # how Faust opens it (faust.stores.rocksdb.RocksDBOptions)
    options.create_if_missing(False)
    try:
        db = rocksdict.Rdict(str(path), options=options, access_type=rocksdict.AccessType.read_only())
    except Exception as error:  # rocksdict raises a bare Exception with RocksDB's status
        return str(error)
    try:
        read = rocksdict.ReadOptions()
        read.set_verify_checksums(True)
        records = db.iter(read)
        records.seek_to_first()
        while records.valid():
            records.next()
        records.status()  # raises what stopped the iteration early
    except Exception as error:
        return str(error)
    finally:
        db.close()
    return None


def _locked_elsewhere(path: Path) -> bool:
    """Whether another process holds the store's ``LOCK`` (RocksDB takes an fcntl lock on it)."""
    lock = path / "LOCK"
    if not lock.exists():
        return False
    with lock.open("r+b") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        with contextlib.suppress(OSError):
            fcntl.lockf(handle, fcntl.LOCK_UN)
    return False
