"""One way to run a process: the ``Service`` contract and ``serve()``.

Every long-running part of the system (worker, scheduler, gateway, sink, simulator, embedded
broker) is a :class:`Service`: it starts, says whether it is ready, may end on its own, and
stops cleanly. ``serve()`` is the one lifecycle around them, used by every command, by the
demo, the replay, both benchmarks and the test fixtures:

1. start the ops server on the metrics port: ``/metrics``, ``/healthz`` (the event loop is
   turning), ``/readyz`` (every service is ready: its Kafka clients joined and, for HTTP
   services, its socket listening);
2. enter every service in order in one ``AsyncExitStack`` (so they stop in reverse order, and a
   failure while starting stops what had started);
3. wait for a stop signal, for ``until``, or for any service to end on its own (a service
   that ends with an error makes ``serve`` raise it; one that simply finished ends the run).

    async with running_services(broker, worker) as group:
        ...                                   # tests and composite commands
    await serve(worker, metrics_port=9466)   # a command: runs until SIGINT/SIGTERM

The ops server runs on its own thread (as prometheus-client's does), so a scrape or a probe
never waits behind a busy event loop; liveness is read from a heartbeat the loop keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from models.errors import ConfigurationError

__all__ = [
    "OpsServer",
    "Service",
    "ServiceGroup",
    "TaskService",
    "local_address",
    "running_services",
    "serve",
    "start_ops_server",
    "wait_for_stop_signal",
]

logger = logging.getLogger(__name__)

_HEARTBEAT_S = 1.0
_STALL_S = 30.0  # /healthz fails once the loop has not turned for this long


class Service(ABC):
    """A part of a process with a lifecycle: ``start``, ``ready``, ``wait``, ``stop``.

    Implementations say what they run in ``start``/``stop``; ``running()`` pairs the two. A
    service that can end on its own (a sink told to stop when idle, a broker process that
    died) completes ``wait()``: with an exception when that is a failure.

    :param name: what logs and errors call it (``"worker"``, ``"scheduler"`` ...).
    """

    name: str = "service"

    def __init__(self) -> None:
        self._started = False
        self._ended = asyncio.Event()

    @abstractmethod
    async def start(self) -> None:
        """Start; return once the service is serving (or raise why it cannot)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop and release everything ``start`` acquired. Called once after a successful start,
        also when the service failed; a ``start`` that raises cleans up after itself."""

    def ready(self) -> bool:
        """True while the service does its job (``/readyz``); by default, from started to stopped."""
        return self._started and not self._ended.is_set()

    async def wait(self) -> None:
        """Return when the service ended on its own; raise if it failed. Default: never."""
        await self._ended.wait()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Any]:
        """Start on enter, stop on exit; yields the service."""
        await self.start()
        self._started = True
        try:
            yield self
        finally:
            self._ended.set()
            await self.stop()


class TaskService(Service):
    """A service whose work is one coroutine, ``run(stop)``, that returns once ``stop`` is set.

    ``start`` launches it; ``wait`` follows the task, so a crash ends ``serve`` with the error
    instead of leaving a process that looks alive and does nothing. A crash nobody waited for
    is raised by ``stop``: it is never lost.
    """

    def __init__(self) -> None:
        super().__init__()
        self._stop_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._surfaced = False  # wait() has raised the task's error already

    @abstractmethod
    async def run(self, stop: asyncio.Event) -> None:
        """The service's work; return soon after ``stop`` is set."""

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self.run(self._stop_event))

    async def wait(self) -> None:
        assert self._task is not None, f"{self.name} was not started"
        try:
            await asyncio.shield(self._task)
        except Exception:
            self._surfaced = True
            raise

    def ready(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        self._stop_event.set()
        if self._task is None:
            return
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        except Exception:
            if not self._surfaced:
                raise


class ServiceGroup:
    """Services running together; what ``running_services`` yields."""

    def __init__(self, services: Sequence[Service]) -> None:
        self.services = list(services)

    def ready(self) -> bool:
        return all(service.ready() for service in self.services)

    async def wait_any(self) -> Service:
        """Wait until one service ends on its own; raise its error if it failed."""
        waits = {asyncio.ensure_future(service.wait()): service for service in self.services}
        if not waits:
            await asyncio.Event().wait()  # nothing can end on its own
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in waits:
                pending.cancel()
        first = next(iter(done))
        first.result()  # a failure raises here
        return waits[first]


@contextlib.asynccontextmanager
async def running_services(*services: Service) -> AsyncIterator[ServiceGroup]:
    """Start ``services`` in order; stop them in reverse order on exit (also after a failure)."""
    async with contextlib.AsyncExitStack() as stack:
        for service in services:
            logger.info("starting %s", service.name)
            await stack.enter_async_context(service.running())
        yield ServiceGroup(services)
        logger.info("stopping %s", ", ".join(s.name for s in reversed(services)))


async def wait_for_stop_signal() -> str:
    """Wait for SIGINT or SIGTERM; return the signal's name."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[str] = loop.create_future()

    def note(sig: signal.Signals) -> None:
        if not received.done():
            received.set_result(sig.name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, note, sig)
    try:
        return await received
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds are not news."""


class OpsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on one port, served from a daemon thread.

    :param ready: whether the process is ready (called on the server thread: keep it a cheap read).
    """

    def __init__(self, ready: Callable[[], bool], registry: CollectorRegistry = REGISTRY) -> None:
        self._ready, self._metrics = ready, make_wsgi_app(registry)
        self.heartbeat = time.monotonic()
        self._server: ThreadingWSGIServer | None = None
        self.port = 0

    def alive(self) -> bool:
        return time.monotonic() - self.heartbeat < _STALL_S

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            ok = self.alive() if path == "/healthz" else self.alive() and self._ready()
            body = b"ok\n" if ok else (b"not ready\n" if path == "/readyz" else b"event loop stalled\n")
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
            return [body]
        return self._metrics(environ, start_response)  # type: ignore[no-any-return]  # prometheus' make_wsgi_app: bare Callable

    def start(self, port: int, host: str) -> None:
        try:
            self._server = make_server(host, port, self._app, ThreadingWSGIServer, handler_class=_QuietHandler)
        except OSError as error:
            raise ConfigurationError(
                f"WEARABLES_METRICS_PORT={port}: cannot listen ({error.strerror}); pick another port or 0 to disable"
            ) from None
        self.port = int(self._server.server_port)
        threading.Thread(target=self._server.serve_forever, name="ops-http", daemon=True).start()
        logger.info("metrics and probes on http://%s:%d/ (metrics, healthz, readyz)", host, self.port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    async def keep_heartbeat(self) -> None:
        while True:
            self.heartbeat = time.monotonic()
            await asyncio.sleep(_HEARTBEAT_S)


@contextlib.asynccontextmanager
async def start_ops_server(port: int | None, ready: Callable[[], bool], *,
                           host: str = "0.0.0.0",  # noqa: S104 - scraped by Prometheus, probed by the orchestrator
                           registry: CollectorRegistry = REGISTRY) -> AsyncIterator[OpsServer | None]:
    """The ops server on ``port`` while the block runs; port 0 or None: none."""
    if port is None or port == 0:
        yield None
        return
    ops = OpsServer(ready, registry)
    ops.start(port, host)
    beat = asyncio.ensure_future(ops.keep_heartbeat())
    try:
        yield ops
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        ops.close()


async def serve(*services: Service, metrics_port: int | None,
                until: Awaitable[Any] | None = None,
                on_ready: Callable[[], Awaitable[None]] | None = None) -> str:
    """Run ``services`` until a stop signal, ``until``, or one of them ends; return why it stopped.

    ``on_ready`` runs once every service has started (to announce it, create topics, ...).
    Raises the error of a service that failed (after stopping the others).
    """
    group_holder: list[ServiceGroup] = []
    ready = lambda: bool(group_holder) and group_holder[0].ready()  # noqa: E731 - read on the ops thread
    async with start_ops_server(metrics_port, ready), running_services(*services) as group:
        group_holder.append(group)
        if on_ready is not None:
            await on_ready()
        stop = asyncio.ensure_future(until if until is not None else wait_for_stop_signal())
        ended = asyncio.ensure_future(group.wait_any())
        try:
            done, _ = await asyncio.wait({stop, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (stop, ended):
                pending.cancel()
        if ended in done:
            service = ended.result()  # raises a service's failure
            return f"{service.name} finished"
        result = stop.result()
        return str(result) if result is not None else "done"


def local_address(host: str) -> str:
    """Where this machine reaches a server bound to ``host``: loopback for a wildcard (0.0.0.0, ::)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - compared, not bound
