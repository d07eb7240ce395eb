"""A live progress line while an in-process worker catches up with the pages published to it."""

from __future__ import annotations

import asyncio
import contextlib

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.common import console
from models.errors import WearablesError
from streams.progress import Progress as WorkerProgress

__all__ = ["WorkerIncomplete", "follow_pages"]


class WorkerIncomplete(WearablesError):
    """The worker did not process every published page in time."""


async def follow_pages(progress: WorkerProgress, expected: int, timeout: float) -> None:
    """Show a live progress line until the worker has consumed ``expected`` pages."""
    columns = (TextColumn("processing raw pages"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("pages", total=expected)
        def finished() -> bool:
            summarized = progress.get("sample_batches") >= progress.get("batches_out")
            return progress.get("raw_pages") >= expected and summarized

        while not finished():
            done = progress.get("raw_pages")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WorkerIncomplete(
                    f"only {done} of {expected} pages were processed within {timeout:g}s; "
                    "rerun with a larger --timeout, or look at the worker's log above"
                )
            with contextlib.suppress(TimeoutError):
                await progress.wait_for("summaries", progress.get("summaries") + 1, timeout=min(remaining, 0.5))
            bar.update(task, completed=progress.get("raw_pages"))
        bar.update(task, completed=progress.get("raw_pages"))
