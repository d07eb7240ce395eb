"""The simulator app: one factory serving both vendors' paths from their spec modules, and no
import of a vendor client (it is what the clients are tested against)."""

from __future__ import annotations

from datetime import datetime, timedelta

import grimp
from aiohttp.test_utils import TestClient, TestServer

from connectors.simulator.app import build_simulator_app
from connectors.simulator.keyset_routes import SigningKey
from connectors.vendors import fitbit_spec, google_health_spec
from connectors.vendors.google_health_notifications import KEYSET_PATH, parse_keyset
from connectors.vendors.registry import VENDOR_CLIENTS
from models.providers import Provider
from tests.connectors.simulator.conftest import CLIENTS, Sim


def test_the_simulator_imports_no_vendor_client() -> None:
    graph = grimp.build_graph("connectors", "models", "runtime")
    clients = {c.__module__ for c in VENDOR_CLIENTS.values()} | {"connectors.vendors.base",
                                                                  "connectors.vendors.registry"}
    for module in clients:
        assert not graph.chain_exists(importer="connectors.simulator", imported=module, as_packages=True), module


async def test_every_day_path_of_the_specs_is_served(sim: Sim) -> None:
    day = sim.world.last_day
    fitbit = _bearer(sim, Provider.FITBIT, fitbit_spec.SCOPES)
    for path, _ in fitbit_spec.DAY_PATHS.values():
        assert (await sim.http.get(path.format(day=day.isoformat()), headers=fitbit)).status == 200, path
    google = _bearer(sim, Provider.GOOGLE_HEALTH, google_health_spec.SCOPES)
    start = datetime.combine(day, datetime.min.time())
    for data_type, field in google_health_spec.FILTER_FIELDS.items():
        bound = google_health_spec.BOUND_FORMATS[data_type]
        bounds = f'{field} >= "{start:{bound}}" AND {field} < "{start + timedelta(days=1):{bound}}"'
        answer = await sim.http.get(google_health_spec.DATA_POINTS_PATH.format(data_type=data_type),
                                    headers=google, params={"filter": bounds})
        assert answer.status == 200, data_type


def _bearer(sim: Sim, provider: Provider, scopes: tuple[str, ...]) -> dict[str, str]:
    """A token with every read scope the consent page asks for."""
    access, _, _ = sim.world.issue_tokens(sim.account(provider), " ".join(scopes))
    return {"Authorization": f"Bearer {access}"}


async def test_the_signing_key_given_is_the_one_published(sim: Sim) -> None:
    key = SigningKey()
    async with TestClient(TestServer(build_simulator_app(sim.world, CLIENTS, key))) as http:
        answer = await http.get(KEYSET_PATH)
        assert answer.status == 200 and parse_keyset(await answer.read()).ids() == {key.key_id}
    served = await (await sim.http.get(KEYSET_PATH)).json()  # without one, the app makes its own
    assert served["primaryKeyId"] != key.key_id
