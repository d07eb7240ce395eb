"""Child ``wearables …`` processes as services: started, ready when their ``/readyz`` says so,
watched through their metrics and /proc, stopped with SIGTERM.

The benchmarks run the product the way it is deployed: one worker process per core sharing
the partitions through their consumer group (one Python process is bound by its GIL to about
one core), the vendor simulator on a core of its own. Everything they learn from the children
comes from the children's ops servers (runtime/service.py) and /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from runtime.broker import free_port
from runtime.service import Service

__all__ = ["ChildProcess", "ChildProcessFailed", "cpu_seconds", "peak_rss", "running_together", "scrape", "total"]

_STOP_WAIT_S = 30.0
_POLL_S = 0.2


class ChildProcessFailed(RuntimeError):
    """A child exited on its own, or never became ready; the message ends with its log's tail."""


class ChildProcess(Service):
    """``python -m cli.main <args> --metrics-port <free port>``, ready once its ``/readyz`` answers 200.

    :param args: the subcommand and its options, e.g. ``("worker",)``.
    :param env: variables added to this process's environment.
    :param log: where the child's output goes (kept, so a failure can quote it).
    :param ready_timeout: seconds to wait for ``/readyz``.
    """

    def __init__(self, args: Sequence[str], *, env: Mapping[str, str], log: Path, name: str | None = None,
                 ready_timeout: float = 120.0) -> None:
        super().__init__()
        self.name = name or args[0]
        self._args, self._env, self._log, self._ready_timeout = tuple(args), dict(env), log, ready_timeout
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self._is_ready = False

    @property
    def log(self) -> Path:
        return self._log

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not started"
        return self.process.pid

    def _tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def start(self) -> None:
        self._log.parent.mkdir(parents=True, exist_ok=True)
        with self._log.open("ab") as log:  # appended: a restarted child keeps its first run's lines
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli.main", *self._args, "--metrics-port", str(self.port),
                env={**os.environ, **self._env}, stdout=log, stderr=log)
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self) -> None:
        deadline = asyncio.get_running_loop().time() + self._ready_timeout
        async with aiohttp.ClientSession() as session:
            while asyncio.get_running_loop().time() < deadline:
                self._check_alive()
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"http://127.0.0.1:{self.port}/readyz",
                                           timeout=aiohttp.ClientTimeout(total=2)) as answer:
                        if answer.status == 200:
                            self._is_ready = True
                            return
                await asyncio.sleep(_POLL_S)
        raise ChildProcessFailed(f"{self.name} was not ready within {self._ready_timeout:g}s; the end of its "
                                 f"log:\n{self._tail()}")

    def _check_alive(self) -> None:
        if self.process is not None and self.process.returncode is not None:
            # the log may live in a temporary directory that is gone by the time anyone reads the error
            raise ChildProcessFailed(f"{self.name} exited with code {self.process.returncode}; the end of its "
                                     f"log:\n{self._tail()}")

    def ready(self) -> bool:
        return self._is_ready and self.process is not None and self.process.returncode is None

    async def wait(self) -> None:
        assert self.process is not None
        await self.process.wait()
        self._check_alive()

    async def stop(self) -> None:
        process, self._is_ready = self.process, False
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _STOP_WAIT_S)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def metrics(self, session: aiohttp.ClientSession) -> dict[str, float]:
        self._check_alive()
        return await scrape(session, self.port)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def peak_rss(self) -> int:
        return peak_rss(self.pid)


@contextlib.asynccontextmanager
async def running_together(children: Sequence[ChildProcess]) -> AsyncIterator[list[ChildProcess]]:
    """Start ``children`` at once and wait until all are ready; stop them all on exit.

    Workers of one consumer group must start together: started one after another, each newcomer
    makes the group rebalance while the ones already "ready" are working.
    """
    results = await asyncio.gather(*(child.start() for child in children), return_exceptions=True)
    try:
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        yield list(children)
    finally:
        await asyncio.gather(*(child.stop() for child in children), return_exceptions=True)


async def total(children: Sequence[ChildProcess], session: aiohttp.ClientSession) -> dict[str, float]:
    """Sample values summed over ``children``, by ``name{label=value,...}`` and by bare name."""
    totals: dict[str, float] = {}
    for child in children:
        for key, value in (await child.metrics(session)).items():
            totals[key] = totals.get(key, 0.0) + value
    return totals


async def scrape(session: aiohttp.ClientSession, port: int) -> dict[str, float]:
    # identity: the child need not spend CPU compressing what it serves on the same machine
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
