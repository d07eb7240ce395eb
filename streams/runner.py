"""Run a Faust app inside the current event loop (no Faust Worker, no signal handlers).

The CLI's ``worker`` and ``demo`` commands and the integration tests all use this, so a
worker in a test is the same code as a worker in production.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import faust

__all__ = ["running"]

logger = logging.getLogger(__name__)


@asynccontextmanager
async def running(app: faust.App) -> AsyncIterator[faust.App]:
    """Start ``app`` (returns once it joined its group and recovered tables), stop it on exit."""
    await app.start()
    logger.info("worker %s started", app.conf.id)
    try:
        yield app
    finally:
        await app.stop()
        logger.info("worker %s stopped", app.conf.id)
