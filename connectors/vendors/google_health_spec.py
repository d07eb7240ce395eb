"""The Google Health API v4's wire facts (docs/vendors.md, Google Health API): hosts and paths,
scopes, the data types we read, the filter grammar of a day, and the page-size limits.

Both sides import this module: the client (``google_health.py``) and the webhook receiver to
speak the API, the simulator to serve it. Only facts live here: the client renders its filter,
the simulator parses it with its own reading of the grammar, so it still tests the client.
"""

from __future__ import annotations

from models.providers import Provider

__all__ = [
    "API",
    "AUTHORIZE_EXTRAS",
    "AUTHORIZE_PATH",
    "AUTHORIZE_URL",
    "BOUND_FORMATS",
    "CIVIL_FORMAT",
    "DATA_POINTS_PATH",
    "DATA_TYPES",
    "FILTER_FIELDS",
    "IDENTITY_PATH",
    "INSTANT_FORMAT",
    "MAX_PAGE_SIZE",
    "PER_PROJECT_LIMIT",
    "PER_USER_LIMIT",
    "PROVIDER",
    "REVOKE_PATH",
    "REVOKE_URL",
    "SCOPES",
    "SUBSCRIPTIONS_PATH",
    "TOKEN_PATH",
    "TOKEN_URL",
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

IDENTITY_PATH = "/v4/users/me/identity"  # healthUserId (and legacyUserId: the old Fitbit id)
DATA_POINTS_PATH = "/v4/users/me/dataTypes/{data_type}/dataPoints"  # list: filter, page_size, page_token
SUBSCRIPTIONS_PATH = "/v4/projects/{project}/subscribers/{subscriber}/subscriptions"

SCOPES = ("https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly",
          "https://www.googleapis.com/auth/googlehealth.health_metrics_and_measurements.readonly")

# --------------------------------------------------------------------------- data types and filters
DATA_TYPES = ("steps", "heart-rate", "sleep")
# A day is ``field >= "<bound>" AND field < "<bound>"`` on one field per data type. Steps and heart
# rate filter on UTC instants; sleep only on its civil (local, zone-less) end time.
FILTER_FIELDS = {"steps": "steps.interval.start_time", "heart-rate": "heart_rate.sample_time.physical_time",
                 "sleep": "sleep.interval.civil_end_time"}
INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # RFC 3339 in UTC
CIVIL_FORMAT = "%Y-%m-%dT%H:%M:%S"  # YYYY-MM-DDTHH:mm:ss, no zone
BOUND_FORMATS = {"steps": INSTANT_FORMAT, "heart-rate": INSTANT_FORMAT, "sleep": CIVIL_FORMAT}

# --------------------------------------------------------------------------- pages
MAX_PAGE_SIZE = 10_000  # a larger page_size is cut to this

# --------------------------------------------------------------------------- rate limits
# (requests, window in seconds): per user per minute, and for the whole project per minute
PER_USER_LIMIT = (300, 60.0)
PER_PROJECT_LIMIT = (120_000, 60.0)
