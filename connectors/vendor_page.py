"""What a vendor client hands back for one request: the body, verbatim, and how to go on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["VendorPage"]


@dataclass(frozen=True, slots=True)
class VendorPage:
    body: bytes = field(repr=False)
    page_token: str | None = None  # the token that produced this page
    next_token: str | None = None  # more pages follow when set
    # as the HTTP library gives them: case-insensitive (HTTP/2 sends names in lower case)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    detail: str | None = None  # Fitbit intraday detail level ("1min"), kept on the raw page
