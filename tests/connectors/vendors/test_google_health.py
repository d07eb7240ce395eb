"""The Google Health client reads ``nextPageToken`` without parsing the page, and gets it right."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from connectors.vendors.google_health import next_page_token

_scalar = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=15), inner, max_size=4), max_leaves=20)
# values that try to look like the key: quotes, the key's own name, JSON punctuation
_tricky = st.sampled_from(['nextPageToken', '"nextPageToken":"x"}', '\\"nextPageToken\\"', 'a"}', ''])


@given(points=st.lists(_json, max_size=5), token=st.none() | st.text(alphabet="abcXYZ019-_=", max_size=30),
       decoy=st.dictionaries(st.text(max_size=15) | _tricky, _json | _tricky, max_size=3), token_first=st.booleans())
def test_next_page_token_agrees_with_parsing_the_page(points: list[Any], token: str | None,
                                                      decoy: dict[str, Any], token_first: bool) -> None:
    page: dict[str, Any] = {"dataPoints": [*points, decoy]}
    if token is not None:
        page = {"nextPageToken": token, **page} if token_first else {**page, "nextPageToken": token}
    body = orjson.dumps(page)
    assert next_page_token(body) == (orjson.loads(body).get("nextPageToken") or None)


def test_next_page_token_of_a_last_page_a_spaced_page_and_a_broken_page() -> None:
    assert next_page_token(b'{"dataPoints": []}') is None
    assert next_page_token(b'{"dataPoints": [],\n  "nextPageToken" : "MTAwMA=="\n}\n') == "MTAwMA=="
    assert next_page_token(b'{"nextPageToken": "abc", "dataPoints": [{"x": "}"}]}') == "abc"
    assert next_page_token(b'{"nextPageToken": "abc", "dataPoi') is None  # the normalizer dead-letters it
