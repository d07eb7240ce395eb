"""Child ``wearables`` processes (cli/children.py): ready by their /readyz, watched through their
metrics and /proc, stopped by SIGTERM; one that dies or never gets ready is an error quoting its log."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from cli.children import ChildProcess, ChildProcessFailed, cpu_seconds, peak_rss, total

SIMULATOR = ("simulator", "--participants", "1", "--port", "0")


async def test_a_child_is_ready_by_its_readyz_serves_metrics_and_stops(tmp_path: Path) -> None:
    child = ChildProcess(SIMULATOR, env={"WEARABLES_ENV": "demo"}, log=tmp_path / "sim.log", ready_timeout=60)
    assert child.name == "simulator" and not child.ready()
    await child.start()
    try:
        assert child.ready() and child.process is not None and child.process.returncode is None
        async with aiohttp.ClientSession() as session:
            metrics = await child.metrics(session)
            assert metrics["python_info"] == 1.0
            assert any(key.startswith("python_info{implementation=") for key in metrics)
            assert (await total([child, child], session))["python_info"] == 2.0
        assert child.cpu_seconds() > 0 and child.peak_rss() > 10 << 20
    finally:
        await child.stop()
    assert child.process.returncode is not None and not child.ready()
    assert cpu_seconds(child.pid) == 0.0 and peak_rss(child.pid) == 0  # gone from /proc
    assert "vendor simulator on http://" in child.log.read_text()


async def test_a_child_that_exits_at_once_fails_with_its_log_tail(tmp_path: Path) -> None:
    child = ChildProcess(("worker",), env={"WEARABLES_PARTITIONS": "lots"}, log=tmp_path / "worker.log")
    with pytest.raises(ChildProcessFailed) as info:
        await child.start()
    message = str(info.value)
    assert message.startswith("worker exited with code 2; the end of its log:\n")
    assert "WEARABLES_PARTITIONS='lots'" in message


async def test_a_child_not_ready_in_time_is_stopped_and_reported(tmp_path: Path) -> None:
    child = ChildProcess(SIMULATOR, env={"WEARABLES_ENV": "demo"}, log=tmp_path / "slow.log", name="sim",
                         ready_timeout=0.05)
    with pytest.raises(ChildProcessFailed, match=r"^sim was not ready within 0\.05s; the end of its log:"):
        await child.start()
    assert child.process is not None and child.process.returncode is not None  # not left running
