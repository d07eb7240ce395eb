"""The Fitbit Web API's wire facts (docs/vendors.md, Fitbit Web API): hosts and paths, scopes
per data type, rate-limit headers, webhook collections and the signature rule.

Both sides import this module: the client (``fitbit.py``) and the webhook receiver to speak
the API, the simulator to serve and sign it. Only facts live here, no behaviour: the simulator
still renders and parses on its own, so it tests the client rather than agreeing with it.

Sources: daily activity summary https://dev.fitbit.com/build/reference/web-api/activity/get-daily-activity-summary
(scope ``activity``); devices https://dev.fitbit.com/build/reference/web-api/devices/get-devices
(scope ``settings``); a missing scope is a 403 with ``errorType`` ``insufficient_scope``
(https://github.com/NickHeiner/decomissioned-fitbit-export/issues/24 quotes one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from models.providers import Provider

__all__ = [
    "ACTIVITY_SUMMARY_PATH",
    "API",
    "AUTHORIZE_PATH",
    "AUTHORIZE_URL",
    "COLLECTIONS",
    "COLLECTION_SUBSCRIPTION_PATH",
    "DATA_TYPES",
    "DAY_PATHS",
    "DETAIL_LEVELS",
    "DEVICES_PATH",
    "INSUFFICIENT_SCOPE",
    "INTRADAY_PATH",
    "INTRADAY_RESOURCES",
    "PER_USER_LIMIT",
    "PROFILE_PATH",
    "PROFILE_SCOPE",
    "PROVIDER",
    "RATE_LIMIT_LIMIT",
    "RATE_LIMIT_REMAINING",
    "RATE_LIMIT_RESET",
    "REVOKE_PATH",
    "SCOPES",
    "SCOPE_OF",
    "SIGNATURE_HEADER",
    "SLEEP_PATH",
    "SUBSCRIPTION_PATH",
    "TOKEN_PATH",
    "UNDATED_PATHS",
    "UNDATED_TYPES",
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
ACTIVITY_SUMMARY_PATH = "/1/user/-/activities/date/{day}.json"  # the day's totals, zones and goals
DEVICES_PATH = "/1/user/-/devices.json"  # a JSON list of the account's devices: battery, last sync
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
    "activities-summary": (ACTIVITY_SUMMARY_PATH, None),
}
DATA_TYPES = tuple(DAY_PATHS)  # fetched a day at a time
UNDATED_PATHS = {"devices": DEVICES_PATH}  # a snapshot, not a day: fetched once per request
UNDATED_TYPES = tuple(UNDATED_PATHS)
# what a webhook's collectionType asks us to fetch (there is no heart-rate collection: it is
# activities; a sync changes the day's summary too). Devices have no collection: polls read them.
COLLECTIONS = {"activities": ("activities-steps-intraday", "activities-heart-intraday", "activities-summary"),
               "sleep": ("sleep",)}

# the scope each data type needs (a grant without it is refused with 403 ``insufficient_scope``)
SCOPE_OF = {"activities-steps-intraday": "activity", "activities-heart-intraday": "heartrate",
            "activities-summary": "activity", "sleep": "sleep", "devices": "settings"}
PROFILE_SCOPE = "profile"  # the profile: who the user is, their time zone
SCOPES = (*dict.fromkeys(SCOPE_OF.values()), PROFILE_SCOPE)  # what the consent page asks for
INSUFFICIENT_SCOPE = "insufficient_scope"  # errorType of the 403 for a scope not granted

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
