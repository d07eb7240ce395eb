"""Shared plumbing of the subcommands: settings, one-line errors, signals, the console."""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click
import uvloop
from rich.console import Console

from models.errors import WearablesError
from runtime.logging import setup_logging
from runtime.settings import Settings, load_settings

__all__ = ["console", "fail", "run_async", "settings_from_env", "wait_for_stop_signal"]

console = Console(highlight=False)
_err = Console(stderr=True, highlight=False)

T = TypeVar("T")


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


async def wait_for_stop_signal() -> str:
    """Wait for SIGINT or SIGTERM; return the signal's name."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[str] = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda s=sig: received.done() or received.set_result(s.name))
    try:
        return await received
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def metrics_port_option(default: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--metrics-port", type=click.IntRange(0, 65535), default=None, show_default=False,
        help=f"Prometheus /metrics port (0 = off). Default: WEARABLES_METRICS_PORT or {default}.",
    )
