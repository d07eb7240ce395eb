"""The worker's agents: normalize (raw → samples) and daily (samples → intraday + daily).

Agent bodies are thin: take a batch of events, call the pure stage functions, send what they
return. Each catches errors per batch (an exception inside a Faust agent acks and skips the
event; docs/architecture.md, "Faust facts"). Outputs are awaited before the batch ends, and
Faust flushes the producer before it commits offsets, so processing is at-least-once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.agents.daily import DAILY_TABLES, register_daily
from streams.agents.normalize import register_normalize

if TYPE_CHECKING:
    import faust

    from runtime.purges import PurgeList
    from runtime.settings import Settings
    from streams.progress import Progress

__all__ = ["TABLES", "register_agents"]

#: Tables of this app, by name (their changelog topics are pre-created from this list).
TABLES: tuple[str, ...] = DAILY_TABLES


def register_agents(app: faust.App, settings: Settings, progress: Progress, purges: PurgeList) -> None:
    """Declare this app's topics, tables and agents on ``app``; both skip ``purges``."""
    register_normalize(app, settings, progress, purges)
    register_daily(app, settings, progress, purges)
