"""The Google Health API v4's wire facts (docs/vendors.md, Google Health API): hosts and paths,
scopes per data type, the data types we read, the list filter grammar, page-size limits and the
error reasons a client tells apart.

Both sides import this module: the client (``google_health.py``) and the webhook receiver to
speak the API, the simulator to serve it. Only facts live here: the client renders its filter,
the simulator parses it with its own reading of the grammar, so it still tests the client.

Sources: scopes https://developers.google.com/health/scopes (every scope name), the scope each
data type needs https://developers.google.com/health/data-types and the Fitbit-to-Google map
https://developers.google.com/health/migration/api-specifications (heartrate →
``health_metrics_and_measurements``, sleep → ``sleep``); paired devices
https://developers.google.com/health/reference/rest/v4/users.pairedDevices/list (and ``/get``:
``googlehealth.settings.readonly``); the filter grammar, page sizes and descending order are the
v4 discovery document's (docs/vendors.md, "Filter grammar", "Page tokens").
"""

from __future__ import annotations

from models.providers import Provider

__all__ = [
    "ACTIVITY_SCOPE",
    "API",
    "AUTHORIZE_EXTRAS",
    "AUTHORIZE_PATH",
    "AUTHORIZE_URL",
    "BOUND_FORMATS",
    "CIVIL",
    "CIVIL_FORMAT",
    "DATA_POINTS_PATH",
    "DATA_TYPES",
    "DATE",
    "DATE_FORMAT",
    "FILTER_FIELDS",
    "FILTER_MEMBERS",
    "FILTER_MEMBER_REASON",
    "IDENTITY_PATH",
    "INSTANT",
    "INSTANT_FORMAT",
    "INSUFFICIENT_SCOPE_REASON",
    "MAX_PAGE_SIZE",
    "METRICS_SCOPE",
    "OR_KINDS",
    "PAGE_SIZES",
    "PAIRED_DEVICES",
    "PAIRED_DEVICES_PATH",
    "PER_PROJECT_LIMIT",
    "PER_USER_LIMIT",
    "PROVIDER",
    "RECORD_KINDS",
    "REVOKE_PATH",
    "REVOKE_URL",
    "SCOPES",
    "SCOPE_OF",
    "SETTINGS_PATH",
    "SETTINGS_SCOPE",
    "SLEEP_SCOPE",
    "SUBSCRIPTIONS_PATH",
    "TOKEN_PATH",
    "TOKEN_URL",
    "UNDATED_TYPES",
    "filter_name",
]

PROVIDER = Provider.GOOGLE_HEALTH

# --------------------------------------------------------------------------- hosts and paths
API = "https://health.googleapis.com"
AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
REVOKE_URL = "https://oauth2.googleapis.com/revoke"
AUTHORIZE_PATH, TOKEN_PATH, REVOKE_PATH = "/o/oauth2/v2/auth", "/token", "/revoke"
# what the consent page needs besides the OAuth basics: a refresh token only with offline access
AUTHORIZE_EXTRAS = {"access_type": "offline", "prompt": "consent"}

IDENTITY_PATH = "/v4/users/me/identity"  # healthUserId (and legacyUserId: the old Fitbit id); any read scope
DATA_POINTS_PATH = "/v4/users/me/dataTypes/{data_type}/dataPoints"  # list: filter, page_size, page_token
PAIRED_DEVICES_PATH = "/v4/users/me/pairedDevices"  # pairedDevices.list: pageSize, pageToken
# users.getSettings: ``timeZone`` (IANA) and ``utcOffset``, with the settings scope
# (https://developers.google.com/health/reference/rest/v4/users/getSettings)
SETTINGS_PATH = "/v4/users/me/settings"
SUBSCRIPTIONS_PATH = "/v4/projects/{project}/subscribers/{subscriber}/subscriptions"

# --------------------------------------------------------------------------- data types and scopes
DATA_TYPES = ("steps", "heart-rate", "daily-resting-heart-rate", "sleep")  # dataPoints, listed a day at a time
PAIRED_DEVICES = "paired-devices"  # our raw data type for pairedDevices.list (not a dataPoints type)
UNDATED_TYPES = (PAIRED_DEVICES,)  # a snapshot, not a day: fetched once per request

_SCOPE = "https://www.googleapis.com/auth/googlehealth."
ACTIVITY_SCOPE = _SCOPE + "activity_and_fitness.readonly"
METRICS_SCOPE = _SCOPE + "health_metrics_and_measurements.readonly"
SLEEP_SCOPE = _SCOPE + "sleep.readonly"  # sleep has a scope of its own
SETTINGS_SCOPE = _SCOPE + "settings.readonly"
# the read scope each data type needs; a grant without it is refused with 403
SCOPE_OF = {"steps": ACTIVITY_SCOPE, "heart-rate": METRICS_SCOPE, "daily-resting-heart-rate": METRICS_SCOPE,
            "sleep": SLEEP_SCOPE, PAIRED_DEVICES: SETTINGS_SCOPE}
SCOPES = tuple(dict.fromkeys(SCOPE_OF.values()))  # what the consent page asks for: the union, in this order

# --------------------------------------------------------------------------- the list filter grammar
# AIP-160: ``member op "literal"`` with ``>=`` and ``<``, joined with AND (sleep: AND and OR). A
# member is ``{type}.<path>`` with the type in snake_case; which paths a type has depends on its
# record kind; "daily-resting-heart-rate" and "sleep" have no ``interval.start_time``.
INSTANT, CIVIL, DATE = "instant", "civil", "date"  # literal kinds: RFC 3339, YYYY-MM-DD[THH:mm:ss], YYYY-MM-DD
RECORD_KINDS = {"steps": "interval", "heart-rate": "sample", "daily-resting-heart-rate": "daily", "sleep": "sleep"}
FILTER_MEMBERS = {
    "interval": {"interval.start_time": INSTANT, "interval.civil_start_time": CIVIL},
    "sample": {"sample_time.physical_time": INSTANT, "sample_time.civil_time": CIVIL},
    "daily": {"date": DATE},
    "sleep": {"interval.end_time": INSTANT, "interval.civil_end_time": CIVIL},
}
OR_KINDS = frozenset({"sleep"})  # the record kinds whose filters may join comparisons with OR


def filter_name(data_type: str) -> str:
    """The data type as filters name it: snake_case (URLs use kebab-case)."""
    return data_type.replace("-", "_")


# What we filter a day on. Steps and heart rate: UTC instants; the daily resting heart rate: its
# civil date; sleep: its civil (local, zone-less) end time, so a day of sleep is the sessions that
# ended on that local date.
FILTER_FIELDS = {"steps": "steps.interval.start_time", "heart-rate": "heart_rate.sample_time.physical_time",
                 "daily-resting-heart-rate": "daily_resting_heart_rate.date",
                 "sleep": "sleep.interval.civil_end_time"}
INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # RFC 3339 in UTC
CIVIL_FORMAT = "%Y-%m-%dT%H:%M:%S"  # YYYY-MM-DDTHH:mm:ss, no zone
DATE_FORMAT = "%Y-%m-%d"
BOUND_FORMATS = {"steps": INSTANT_FORMAT, "heart-rate": INSTANT_FORMAT, "daily-resting-heart-rate": DATE_FORMAT,
                 "sleep": CIVIL_FORMAT}

# --------------------------------------------------------------------------- pages
MAX_PAGE_SIZE = 10_000  # a larger page_size is cut to this
# (default, maximum) page size per data type: 1440 and 10,000; sleep (and exercise) 25 and 25;
# pairedDevices.list 5 and 100. A larger one is coerced to the maximum, not refused.
PAGE_SIZES = {"steps": (1440, MAX_PAGE_SIZE), "heart-rate": (1440, MAX_PAGE_SIZE),
              "daily-resting-heart-rate": (1440, MAX_PAGE_SIZE), "sleep": (25, 25), PAIRED_DEVICES: (5, 100)}

# --------------------------------------------------------------------------- errors
# google.rpc.ErrorInfo reasons: a token without the scope the call needs (403 PERMISSION_DENIED,
# https://cloud.google.com/dotnet/docs/reference/Google.Api.CommonProtos/latest/Google.Api.ErrorReason),
# and a filter on a member its data type does not have (400 INVALID_ARGUMENT,
# https://github.com/prinse84/fit-gauge/issues/3).
INSUFFICIENT_SCOPE_REASON = "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
FILTER_MEMBER_REASON = "INVALID_DATA_POINT_FILTER_DATA_TYPE_MEMBER"

# --------------------------------------------------------------------------- rate limits
# (requests, window in seconds): per user per minute, and for the whole project per minute
PER_USER_LIMIT = (300, 60.0)
PER_PROJECT_LIMIT = (120_000, 60.0)
