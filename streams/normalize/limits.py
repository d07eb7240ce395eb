"""Limits on vendor JSON, checked on the bytes before orjson or Polars touch them.

Polars infers a struct or list type as deep as the JSON, and its time and memory grow much
faster than linearly with depth (a 14 KB page nested 1,000 deep needs ~13 GB and ~50 s), so a
page deeper than any vendor format, or larger than any real page, is refused up front with its
own dead-letter reason. ``byte_batches`` bounds a normalize pass by bytes, not only by records.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

from models.errors import DecodeError, Reason

__all__ = ["MAX_DEPTH", "MAX_PAGE_BYTES", "TAKE_BUDGET_BYTES", "byte_batches", "check_body", "check_size",
           "json_depth_exceeds"]

#: The largest page body we read. The largest legitimate page is a 1-sec heart-rate day
#: (86,400 samples): 2.7 MB as compact JSON (tests/builders.py), ~4-6 MB as Fitbit sends it;
#: 16 MiB leaves a margin of ~3x over that (the producers' own request limit is 8 MiB).
MAX_PAGE_BYTES = 16 << 20

#: The deepest JSON nesting we read (the top-level object is level 1). The deepest vendor shape
#: in the normalizers' fixtures (tests/streams/normalize/samples.py) is 7: Google points with a
#: civil time (body / dataPoints / point / heartRate / sampleTime / civilTime / date); Fitbit's is 6 (sleep
#: levels, heart-rate zones). 12 leaves room for a new wrapper; Polars' cost there is negligible.
MAX_DEPTH = 12

#: The raw bytes one normalize pass may hold. A page costs ~20x its size at the peak of a pass
#: (a 2.55 MiB 1-sec day peaks at ~50 MiB), so 32 MiB of pages peak at ~650 MiB; a take of 500
#: minute-level pages (~50 KB each, ~25 MB) still goes in one pass.
TAKE_BUDGET_BYTES = 32 << 20

# A JSON string, escapes included; an unterminated one runs to the end (linear, no backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether the JSON ``body`` nests deeper than ``limit`` levels of ``[]``/``{}``.

    A byte scan: strings are removed (brackets inside them do not count), then everything but
    brackets; each of ``limit`` rounds removes the innermost level (one ``re.sub`` pass removes
    every adjacent pair, never a pair it uncovers). Whatever is left is deeper than ``limit``,
    unless the brackets do not even balance: that body is not JSON, which orjson then says.
    """
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = _INNERMOST.sub(b"", brackets)
    if not brackets:
        return False
    return brackets.count(b"[") == brackets.count(b"]") and brackets.count(b"{") == brackets.count(b"}")


def check_size(size: int) -> None:
    """A DecodeError (``PAGE_TOO_LARGE``) if a page of ``size`` bytes is over ``MAX_PAGE_BYTES``."""
    if size > MAX_PAGE_BYTES:
        raise DecodeError(f"page of {size} bytes is over the limit of {MAX_PAGE_BYTES} bytes",
                          reason=Reason.PAGE_TOO_LARGE)


def check_body(body: bytes) -> None:
    """A DecodeError (``PAGE_TOO_LARGE`` or ``TOO_DEEP``) if a vendor body is over a limit."""
    check_size(len(body))
    if json_depth_exceeds(body, MAX_DEPTH):
        raise DecodeError(f"JSON nested deeper than {MAX_DEPTH} levels", reason=Reason.TOO_DEEP)


class _Sized(Protocol):
    @property
    def value(self) -> bytes | None: ...


T = TypeVar("T", bound=_Sized)


def byte_batches(records: Sequence[T], budget: int | None = None) -> Iterator[list[T]]:
    """``records`` in order, cut into consecutive runs whose values sum to at most ``budget``
    bytes (``TAKE_BUDGET_BYTES`` by default); a record bigger than that alone is a run of its own."""
    budget = TAKE_BUDGET_BYTES if budget is None else budget
    run: list[T] = []
    size = 0
    for record in records:
        n = len(record.value or b"")
        if run and size + n > budget:
            yield run
            run, size = [], 0
        run.append(record)
        size += n
    if run:
        yield run
