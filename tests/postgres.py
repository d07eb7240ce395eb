"""A throwaway PostgreSQL server for the vault tests: Debian's binaries, a cluster in a temporary
folder, trust authentication on a free loopback port. ``.ci/run`` installs the ``postgresql``
package; elsewhere the tests that need it are skipped with the command that would enable them
(and fail instead under ``CI=true``, where skipping would hide a broken vault)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "postgres_server"]

_INSTALL_HINT = "install it with `apt-get install -y postgresql` (.ci/run does)"


class PostgresServer:
    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def new_database(self) -> str:
        """A fresh, empty database: tests share the server, never the tables."""
        import asyncpg

        name = f"t_{uuid.uuid4().hex[:12]}"
        connection = await asyncpg.connect(self.url())
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.url(name)


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))  # Debian keeps them off PATH
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    # the server refuses to run as root; CI runs as root, with Debian's `postgres` user present
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    binaries = _binaries()
    if binaries is None:
        message = f"PostgreSQL server binaries not found: {_INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # straight under /tmp: pytest's own folders are private to root, where `postgres` cannot enter
    data = Path(tempfile.mkdtemp(prefix="wearables-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = _free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(_as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                 "--no-sync"]), **run)  # type: ignore[call-overload]
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    subprocess.run(_as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                                 str(data / "server.log"), "-w", "-t", "60", "start"]), **run)  # type: ignore[call-overload]
    try:
        _wait_listening(port)
        yield PostgresServer(port)
    finally:
        subprocess.run(_as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       check=False, capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


def _wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
