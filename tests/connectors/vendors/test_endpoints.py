"""Where the vendors are: their real hosts, or every path on the simulator's one host; and our
OAuth clients there, with the demo's public stand-ins refused outside the demo."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.vendors import fitbit_spec, google_health_spec
from connectors.vendors.endpoints import DEMO_SECRETS, credentials, endpoints, is_loopback, webhook_secrets
from models.errors import ConfigurationError
from models.providers import Provider
from runtime.settings import Settings


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings.model_validate({"data_dir": tmp_path, **values})


def test_the_real_hosts_unless_the_simulator_moves_them_all(tmp_path: Path) -> None:
    real = endpoints(_settings(tmp_path).vendors, Provider.GOOGLE_HEALTH)
    assert (real.api, real.authorize, real.token) == (google_health_spec.API, google_health_spec.AUTHORIZE_URL,
                                                      google_health_spec.TOKEN_URL)
    assert endpoints(_settings(tmp_path).vendors, Provider.FITBIT).authorize == fitbit_spec.AUTHORIZE_URL
    simulated = endpoints(_settings(tmp_path, vendor_api_base="http://127.0.0.1:9/").vendors, Provider.FITBIT)
    assert (simulated.api, simulated.authorize, simulated.token, simulated.revoke) == (
        "http://127.0.0.1:9", "http://127.0.0.1:9/oauth2/authorize", "http://127.0.0.1:9/oauth2/token",
        "http://127.0.0.1:9/oauth2/revoke")
    assert is_loopback(simulated.api) and not is_loopback(real.api)


def test_demo_stand_ins_only_in_the_demo(tmp_path: Path) -> None:
    demo = _settings(tmp_path, env="demo")
    assert credentials(demo.vendors, Provider.FITBIT).client_secret == DEMO_SECRETS["fitbit_client_secret"]
    assert webhook_secrets(demo.gateway) == (DEMO_SECRETS["fitbit_verify_code"], DEMO_SECRETS["google_webhook_token"])
    with pytest.raises(ConfigurationError, match="WEARABLES_GOOGLE_CLIENT_SECRET"):
        credentials(_settings(tmp_path).vendors, Provider.GOOGLE_HEALTH)
    with pytest.raises(ConfigurationError, match="public demo value"):
        credentials(_settings(tmp_path, fitbit_client_secret=DEMO_SECRETS["fitbit_client_secret"]).vendors,
                    Provider.FITBIT)
    real = credentials(_settings(tmp_path, google_client_secret="s3cret", google_client_id="us").vendors,
                       Provider.GOOGLE_HEALTH)
    assert (real.client_id, real.client_secret) == ("us", "s3cret") and "s3cret" not in repr(real)
