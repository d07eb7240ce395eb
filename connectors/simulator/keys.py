"""What the simulator's route modules share: the app's state, stored under typed AppKeys by
``app.build_simulator_app``, and the handler type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from connectors.simulator.world import World

__all__ = ["CLIENTS", "WORLD", "Handler"]

WORLD = web.AppKey("world", World)
CLIENTS = web.AppKey("clients", dict)  # Provider → Credentials: the OAuth clients each vendor knows
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
