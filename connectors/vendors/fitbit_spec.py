"""The Fitbit Web API's wire facts (docs/vendors.md, Fitbit Web API): hosts and paths, scopes,
rate-limit headers, webhook collections and the signature rule.

Both sides import this module: the client (``fitbit.py``) and the webhook receiver to speak
the API, the simulator to serve and sign it. Only facts live here, no behaviour: the simulator
still renders and parses on its own, so it tests the client rather than agreeing with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from models.providers import Provider

__all__ = [
    "API",
    "AUTHORIZE_PATH",
    "AUTHORIZE_URL",
    "COLLECTIONS",
    "COLLECTION_SUBSCRIPTION_PATH",
    "DATA_TYPES",
    "DAY_PATHS",
    "DETAIL_LEVELS",
    "INTRADAY_PATH",
    "INTRADAY_RESOURCES",
    "PER_USER_LIMIT",
    "PROFILE_PATH",
    "PROVIDER",
    "RATE_LIMIT_LIMIT",
    "RATE_LIMIT_REMAINING",
    "RATE_LIMIT_RESET",
    "REVOKE_PATH",
    "SCOPES",
    "SIGNATURE_HEADER",
    "SLEEP_PATH",
    "SUBSCRIPTION_PATH",
    "TOKEN_PATH",
    "VERIFY_PARAMETER",
    "signature",
]

PROVIDER = Provider.FITBIT

# --------------------------------------------------------------------------- hosts and paths
API = "https://api.fitbit.com"  # data calls, token and revoke
AUTHORIZE_URL = "https://www.fitbit.com/oauth2/authorize"  # the consent page (another host)
AUTHORIZE_PATH = "/oauth2/authorize"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path
REVOKE_PATH = "/oauth2/revoke"

PROFILE_PATH = "/1/user/-/profile.json"  # encodedId and the IANA time zone
# one day of an intraday resource; ``-`` is the token's user
INTRADAY_PATH = "/1/user/-/activities/{resource}/date/{day}/1d/{detail}.json"
DETAIL_LEVELS = ("1sec", "1min", "5min", "15min")
SLEEP_PATH = "/1.2/user/-/sleep/date/{day}.json"  # v1.2: with stages (v1 has none)
SUBSCRIPTION_PATH = "/1/user/-/apiSubscriptions/{subscription}.json"  # every collection
COLLECTION_SUBSCRIPTION_PATH = "/1/user/-/{collection}/apiSubscriptions/{subscription}.json"

# raw data type → the intraday resource it is a day of
INTRADAY_RESOURCES = {"activities-steps-intraday": "steps", "activities-heart-intraday": "heart"}
_DETAIL = "1min"
# a day of each raw data type: (path under the API base, with ``{day}`` left to fill;
# the intraday detail level kept on the raw page)
DAY_PATHS: dict[str, tuple[str, str | None]] = {
    **{data_type: (INTRADAY_PATH.replace("{resource}", resource).replace("{detail}", _DETAIL), _DETAIL)
       for data_type, resource in INTRADAY_RESOURCES.items()},
    "sleep": (SLEEP_PATH, None),
}
DATA_TYPES = tuple(DAY_PATHS)
# what a webhook's collectionType asks us to fetch (there is no heart-rate collection: it is activities)
COLLECTIONS = {"activities": ("activities-steps-intraday", "activities-heart-intraday"), "sleep": ("sleep",)}

SCOPES = ("activity", "heartrate", "sleep", "profile")

# --------------------------------------------------------------------------- rate limits
# requests per user per clock hour (fixed windows), and the window in seconds
PER_USER_LIMIT = (150, 3600.0)
RATE_LIMIT_LIMIT = "Fitbit-Rate-Limit-Limit"  # the quota
RATE_LIMIT_REMAINING = "Fitbit-Rate-Limit-Remaining"  # calls left in this hour (on every answer)
RATE_LIMIT_RESET = "Fitbit-Rate-Limit-Reset"  # seconds until the counter resets

# --------------------------------------------------------------------------- webhooks
SIGNATURE_HEADER = "X-Fitbit-Signature"
VERIFY_PARAMETER = "verify"  # GET ?verify=<code>: 204 for the subscriber's code, 404 for any other


def signature(body: bytes, client_secret: str) -> str:
    """``X-Fitbit-Signature`` of a notification body: base64(HMAC-SHA1(body, client_secret + "&"))."""
    return base64.b64encode(hmac.new(f"{client_secret}&".encode(), body, hashlib.sha1).digest()).decode()
