"""The terminal side of every subcommand: settings, one-line errors, running async bodies, and
progress that a person can follow on a terminal and in a log file alike.

``progress()`` draws a live bar on a terminal; when the output is a file or a CI log (where
rich draws nothing until the end), it prints a plain line every ``_EVERY_S`` seconds instead, so
no phase that takes minutes is silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, NoReturn, TypeVar

import click
import uvloop
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from models.errors import WearablesError
from runtime.logging import setup_logging
from runtime.settings import Settings, load_settings
from streams.progress import Progress as WorkerProgress

__all__ = [
    "Steps",
    "WorkerIncomplete",
    "console",
    "fail",
    "follow_pages",
    "metrics_port_option",
    "progress",
    "run_async",
    "settings_from_env",
]

console = Console(highlight=False)
_err = Console(stderr=True, highlight=False)
_EVERY_S = 10.0

T = TypeVar("T")


class WorkerIncomplete(WearablesError):
    """The worker did not process every published page in time."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line to stderr and exit: configuration and connectivity problems are not bugs."""
    _err.print(f"[bold red]wearables: error:[/] {message}", soft_wrap=True)
    sys.exit(code)


def settings_from_env(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**overrides)
    except WearablesError as error:
        fail(str(error))
    setup_logging(settings.log_level)
    return settings


def run_async(body: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run an async command body; turn our errors into a one-line message, Ctrl-C into exit 130."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            # uvloop: the connectors' HTTP and Kafka I/O costs about a third less CPU on it
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(body(*args, **kwargs))
        except WearablesError as error:
            fail(str(error))
        except KeyboardInterrupt:
            _err.print("interrupted")
            sys.exit(130)

    return wrapper


def metrics_port_option(default: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--metrics-port", type=click.IntRange(0, 65535), default=None, show_default=False,
        help=f"Port of /metrics, /healthz and /readyz (0 = off). Default: WEARABLES_METRICS_PORT or {default}.",
    )


class Steps:
    """A phase's progress: ``advance()`` or ``update(done, note=...)``; drawn or printed by ``progress()``."""

    def __init__(self, description: str, total: int | None, bar: Progress | None, task: TaskID | None, *,
                 silent: bool = False) -> None:
        self.description, self.total, self.done, self.note = description, total, 0, ""
        self._bar, self._task, self._silent = bar, task, silent
        self._started = self._printed = time.monotonic()

    def advance(self, steps: int = 1) -> None:
        self.update(self.done + steps)

    def update(self, done: int, *, note: str = "") -> None:
        self.done, self.note = done, note
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, description=self.line(with_counts=False))
        elif not self._silent and time.monotonic() - self._printed >= _EVERY_S:
            self._printed = time.monotonic()
            console.print(self.line(with_counts=True), markup=False)

    def line(self, *, with_counts: bool) -> str:
        """The description, and with ``with_counts`` how far it got and how long it took."""
        text = self.description
        if with_counts:
            of = f"/{self.total:,}" if self.total else ""
            share = f" ({self.done / self.total:.0%})" if self.total else ""
            counts = f"{self.done:,}{of}{share}, " if self.total or self.done else ""
            text += f": {counts}{time.monotonic() - self._started:.0f} s"
        return f"{text} · {self.note}" if self.note else text


@contextlib.contextmanager
def progress(description: str, total: int | None = None, *, transient: bool = True,
             quiet: bool = False) -> Iterator[Steps]:
    """A live bar on a terminal, a line every 10 s elsewhere, and a closing line in both (``quiet``: none)."""
    if quiet:
        yield Steps(description, total, None, None, silent=True)
        return
    if not console.is_terminal:
        steps = Steps(description, total, None, None)
        console.print(f"{description}…", markup=False)
        yield steps
        console.print(steps.line(with_counts=True) + " — done", markup=False)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=transient) as bar:
        task = bar.add_task(description, total=total)
        yield Steps(description, total, bar, task)


async def follow_pages(worker: WorkerProgress, expected: int, timeout: float) -> None:
    """Show progress until the worker has consumed ``expected`` pages and summarized their batches."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def finished() -> bool:
        summarized = worker.get("sample_batches") >= worker.get("batches_out")
        return worker.get("raw_pages") >= expected and summarized

    with progress("processing raw pages", expected) as steps:
        while not finished():
            done = worker.get("raw_pages")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WorkerIncomplete(
                    f"only {done} of {expected} pages were processed within {timeout:g}s; "
                    "rerun with a larger --timeout, or look at the worker's log above"
                )
            with contextlib.suppress(TimeoutError):
                await worker.wait_for("summaries", worker.get("summaries") + 1, timeout=min(remaining, 0.5))
            steps.update(worker.get("raw_pages"))
        steps.update(worker.get("raw_pages"))
