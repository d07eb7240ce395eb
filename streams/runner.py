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
table's changelog.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import time
from pathlib import Path

import rocksdict
from prometheus_client import REGISTRY, CollectorRegistry

from models.errors import WearablesError
from runtime.metrics import gauge
from runtime.service import Service
from runtime.settings import Settings
from streams.app import Pipeline, build_pipeline

__all__ = ["WorkerCrashed", "WorkerService", "set_aside_damaged_stores"]

logger = logging.getLogger(__name__)

WORKER_PAGES = gauge("worker_raw_pages_seen", "Raw pages this worker process has consumed")
WORKER_READY = gauge("worker_ready", "1 once this worker has joined its group and recovered its tables")
STORES_SET_ASIDE = gauge("worker_stores_set_aside", "Table stores found damaged and moved aside at the last start")
_GAUGE_INTERVAL_S = 5.0


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
            aside = await asyncio.to_thread(set_aside_damaged_stores, Path(self._pipeline.app.conf.tabledir))
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
