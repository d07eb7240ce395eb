"""The route modules find the world and the OAuth clients under the app's keys."""

from __future__ import annotations

from connectors.simulator.app import build_simulator_app
from connectors.simulator.keys import CLIENTS, WORLD
from tests.connectors.simulator.conftest import CLIENTS as CREDENTIALS
from tests.connectors.simulator.conftest import Sim


def test_the_app_keeps_the_world_and_the_clients_under_its_keys(sim: Sim) -> None:
    app = build_simulator_app(sim.world, CREDENTIALS)
    assert app[WORLD] is sim.world and app[CLIENTS] is CREDENTIALS
    assert sim.http.server.app[WORLD] is sim.world
