"""The terminal side of the commands (cli/console.py): progress off a terminal, one-line errors,
exit codes."""

from __future__ import annotations

import pytest

from cli.console import WorkerIncomplete, fail, follow_pages, progress, run_async
from models.errors import ConfigurationError
from streams.progress import Progress


def test_progress_off_a_terminal_prints_a_start_line_and_a_closing_line_with_the_count(
        capsys: pytest.CaptureFixture[str]) -> None:
    with progress("publishing pages", 40) as steps:
        for _ in range(30):
            steps.advance()
        steps.update(32, note="R1")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "publishing pages…"
    assert lines[-1].startswith("publishing pages: 32/40 (80%), ") and lines[-1].endswith(" s · R1 — done")
    assert len(lines) == 2  # nothing in between within the first 10 s


def test_quiet_progress_prints_nothing_but_counts(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("linking", 3, quiet=True) as steps:
        steps.advance(3)
    assert steps.done == 3 and capsys.readouterr().out == ""


def test_fail_exits_2_with_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        fail("KAFKA_BOOTSTRAP_SERVERS='x' is not host:port")
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["wearables: error: KAFKA_BOOTSTRAP_SERVERS='x' is not host:port"]


def test_run_async_returns_the_body_s_value_and_turns_our_errors_into_exit_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    async def body(n: int) -> int:
        return n * 2

    async def misconfigured() -> None:
        raise ConfigurationError("WEARABLES_PARTITIONS='lots' is not a number")

    async def bug() -> None:
        raise KeyError("not ours")

    assert run_async(body)(21) == 42
    with pytest.raises(SystemExit) as info:
        run_async(misconfigured)()
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == "wearables: error: WEARABLES_PARTITIONS='lots' is not a number"
    with pytest.raises(KeyError):  # a bug keeps its traceback
        run_async(bug)()


async def test_follow_pages_returns_once_every_page_is_counted_and_summarized(
        capsys: pytest.CaptureFixture[str]) -> None:
    worker = Progress()
    worker.add("raw_pages", 5)
    worker.add("batches_out", 8)
    worker.add("sample_batches", 8)
    await follow_pages(worker, 5, timeout=5)
    assert capsys.readouterr().out.splitlines()[-1].startswith("processing raw pages: 5/5 (100%)")


async def test_follow_pages_gives_up_with_how_far_the_worker_got() -> None:
    worker = Progress()
    worker.add("raw_pages", 2)
    with pytest.raises(WorkerIncomplete, match=r"only 2 of 5 pages were processed within 0\.3s"):
        await follow_pages(worker, 5, timeout=0.3)

