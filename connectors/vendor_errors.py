"""What a vendor call can end in, besides a page. The scheduler decides per class:

    VendorError
    ├── RateLimited        429: wait for the reset the headers give, then try again
    ├── TokenExpired       401 expired_token: refresh (once, under the participant's lock) and retry
    ├── AccessRevoked      invalid_grant / invalid_token: the participant is ``revoked``; stop fetching
    ├── VendorUnavailable  5xx, timeouts, broken connections: retry with jittered backoff
    └── VendorRejected     any other 4xx: a bug or a bad request; not retried
"""

from __future__ import annotations

from models.errors import WearablesError
from models.providers import Provider

__all__ = ["AccessRevoked", "RateLimited", "TokenExpired", "VendorError", "VendorRejected", "VendorUnavailable"]


class VendorError(WearablesError):
    def __init__(self, message: str, *, provider: Provider, status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class RateLimited(VendorError):
    def __init__(self, message: str, *, provider: Provider, retry_after: float) -> None:
        super().__init__(message, provider=provider, status=429)
        self.retry_after = retry_after


class TokenExpired(VendorError):
    pass


class AccessRevoked(VendorError):
    pass


class VendorUnavailable(VendorError):
    pass


class VendorRejected(VendorError):
    pass
