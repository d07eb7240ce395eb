"""The Service contract and serve(): order, readiness probes, failures and clean shutdown."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest

from runtime.broker import free_port
from runtime.service import Service, TaskService, running_services, serve, start_ops_server


class Recorded(Service):
    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    async def start(self) -> None:
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


class Looping(TaskService):
    name = "loop"

    def __init__(self, *, fail_after: float | None = None, finish_after: float | None = None) -> None:
        super().__init__()
        self.fail_after, self.finish_after, self.rounds = fail_after, finish_after, 0

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        while not stop.is_set():
            self.rounds += 1
            if self.fail_after is not None and loop.time() - began > self.fail_after:
                raise RuntimeError("the loop broke")
            if self.finish_after is not None and loop.time() - began > self.finish_after:
                return
            await asyncio.sleep(0.01)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def test_services_start_in_order_and_stop_in_reverse() -> None:
    log: list[str] = []
    async with running_services(Recorded("a", log), Recorded("b", log)) as group:
        assert group.ready()
    assert log == ["start a", "start b", "stop b", "stop a"]


async def test_a_service_that_fails_to_start_stops_those_already_started() -> None:
    log: list[str] = []

    class Broken(Recorded):
        async def start(self) -> None:
            raise RuntimeError("cannot listen")

    with pytest.raises(RuntimeError, match="cannot listen"):
        async with running_services(Recorded("a", log), Broken("b", log)):
            pass
    assert log == ["start a", "stop a"]


async def test_serve_returns_when_until_completes_and_stops_everything() -> None:
    log: list[str] = []
    loop = Looping()
    reason = await serve(Recorded("a", log), loop, metrics_port=0, until=asyncio.sleep(0.2, result="enough"))
    assert reason == "enough"
    assert log == ["start a", "stop a"]
    assert loop.rounds > 0 and not loop.ready()


async def test_serve_raises_the_error_of_a_service_that_crashed() -> None:
    log: list[str] = []
    with pytest.raises(RuntimeError, match="the loop broke"):
        await serve(Recorded("a", log), Looping(fail_after=0.05), metrics_port=0, until=asyncio.sleep(30))
    assert log == ["start a", "stop a"]


async def test_serve_ends_when_a_service_finishes_on_its_own() -> None:
    reason = await serve(Looping(finish_after=0.05), metrics_port=0, until=asyncio.sleep(30))
    assert reason == "loop finished"


async def test_ops_server_serves_metrics_health_and_readiness() -> None:
    ready = [False]
    port = free_port()
    async with start_ops_server(port, lambda: ready[0], host="127.0.0.1") as ops:
        assert ops is not None and ops.port == port
        health = await asyncio.to_thread(_get, port, "/healthz")
        not_ready = await asyncio.to_thread(_get, port, "/readyz")
        ready[0] = True
        is_ready = await asyncio.to_thread(_get, port, "/readyz")
        metrics = await asyncio.to_thread(_get, port, "/metrics")
        ops.heartbeat -= 60  # the event loop has not turned for a minute
        stalled = await asyncio.to_thread(_get, port, "/healthz")
    assert health == (200, "ok\n")
    assert not_ready[0] == 503
    assert is_ready == (200, "ok\n")
    assert metrics[0] == 200 and "python_info" in metrics[1]
    assert stalled[0] == 503 and "stalled" in stalled[1]


async def test_readyz_follows_the_services_while_serve_runs() -> None:
    port = free_port()
    seen: list[tuple[int, str]] = []

    async def probe() -> None:
        await asyncio.sleep(0.1)
        seen.append(await asyncio.to_thread(_get, port, "/readyz"))

    await serve(Looping(), metrics_port=port, until=probe())
    assert seen == [(200, "ok\n")]


async def test_a_crash_nobody_waited_for_is_raised_when_the_service_stops() -> None:
    looping = Looping(fail_after=0.01)
    with pytest.raises(RuntimeError, match="the loop broke"):
        async with looping.running():
            await asyncio.sleep(0.2)  # the task has crashed meanwhile; nobody called wait()
