"""Several ``wearables worker`` processes, started, watched through their metrics, stopped.

The benchmark runs the product the way it is deployed: one worker process per core, sharing
the partitions through their consumer group (one Python process is bound by its GIL to about
one core). Everything it learns from them comes from their Prometheus endpoints and /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["WorkerProcesses", "cpu_seconds", "peak_rss", "scrape", "worker_processes"]


@dataclass(frozen=True, slots=True)
class WorkerProcesses:
    processes: list[asyncio.subprocess.Process]
    ports: list[int]
    logs: list[Path]

    async def totals(self, session: aiohttp.ClientSession) -> dict[str, float]:
        """Sample values summed over the workers, by ``name{label=value,...}`` and by bare name."""
        totals: dict[str, float] = {}
        for port in self.ports:
            for key, value in (await scrape(session, port)).items():
                totals[key] = totals.get(key, 0.0) + value
        return totals

    def peak_rss(self) -> int:
        return sum(peak_rss(p.pid) for p in self.processes)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes)

    def check_alive(self) -> None:
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.returncode is not None:
                # The log lives in a temporary directory that is gone by the time anyone reads the error.
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
                raise RuntimeError(f"a worker exited with code {process.returncode}; the end of its log:\n{tail}")


async def scrape(session: aiohttp.ClientSession, port: int) -> dict[str, float]:
    # identity: the worker need not spend CPU compressing what it serves on the same machine
    async with session.get(f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=5),
                           headers={"Accept-Encoding": "identity"}) as response:
        text = await response.text()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = sample.value
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def peak_rss(pid: int) -> int:
    """A process's peak resident set (VmHWM), in bytes; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, in seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def worker_processes(count: int, env: dict[str, str], data_dir: Path, *,
                           command: tuple[str, ...] = ("worker",)) -> AsyncIterator[WorkerProcesses]:
    """Start ``count`` ``wearables <command>`` processes with ``env`` (each its own data dir and
    log, a free metrics port); stop them on exit."""
    processes, ports, logs = [], [], []
    try:
        for n in range(count):
            port = _free_port()
            worker_dir = data_dir / f"worker-{n}"
            worker_dir.mkdir(parents=True, exist_ok=True)
            logs.append(worker_dir / "worker.log")
            log = logs[-1].open("wb")
            processes.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli.main", *command, "--metrics-port", str(port),
                env={**os.environ, **env, "WEARABLES_DATA_DIR": str(worker_dir)}, stdout=log, stderr=log))
            ports.append(port)
        yield WorkerProcesses(processes, ports, logs)
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
