"""The normalizer contract, what a normalizer returns, and the registry that dispatches pages.

A ``Normalizer`` turns the pages of one vendor format into SampleBatches in two steps, so that
many pages of one format share one vectorised pass (per-page Polars calls cost ~100 µs each,
more than a minute-level page's work):

- ``prepare(page, research_id, *, secret)`` does one page's Python work (parse the JSON, check
  the shape, pull out columns) and raises DecodeError when the page as a whole is unusable;
- ``finish(prepared)`` does the Polars work for every page prepared in one call and returns one
  ``Normalized`` per page, in order. It does not raise for one page: page-level problems belong
  to ``prepare``, sample-level ones become rejects.

A format with few, small pages (a sleep log, a device list) derives from ``PerPageNormalizer``
and writes only ``normalize_page``.

``Registry`` maps each ``(provider, data_type)`` to its normalizer. ``Registry.normalize_pages``
is the one dispatcher: it checks each research id once, groups the pages by normalizer and
calls each normalizer's ``finish`` once per call. It knows no format.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from models.errors import DecodeError, Reason
from models.providers import Provider
from models.raw import RawPage
from models.samples import SampleBatch

__all__ = ["Normalized", "Normalizer", "PerPageNormalizer", "Registry", "Rejected", "check_research_id"]

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Rejected:
    """Samples of one page rejected for one reason, with their original vendor JSON.

    :param reason: why (also the dead letter's reason).
    :param count: how many samples.
    :param detail: a one-line description for the dead letter.
    :param original: the rejected input entries, as JSON.
    """

    reason: Reason
    count: int
    detail: str
    original: bytes


@dataclass(slots=True)
class Normalized:
    """The batches and rejects of one page; ``input_samples`` = accepted + rejected.

    Every input sample ends up exactly once either in a batch or in a reject; the input count
    lets callers (and property tests) check it.
    """

    batches: list[SampleBatch] = field(default_factory=list)
    rejects: list[Rejected] = field(default_factory=list)
    input_samples: int = 0

    @property
    def samples(self) -> int:
        return sum(len(b) for b in self.batches)

    @property
    def rejected(self) -> int:
        return sum(r.count for r in self.rejects)

    def extend(self, other: Normalized) -> None:
        self.batches += other.batches
        self.rejects += other.rejects
        self.input_samples += other.input_samples


class Normalizer(ABC, Generic[P]):
    """One vendor page format → SampleBatches, many pages per pass (see the module docstring).

    A subclass sets ``provider`` and ``data_types`` (the ``RawPage.data_type`` values it reads)
    and is registered in ``streams/normalize/__init__.py``::

        class FitbitSleep(PerPageNormalizer):
            provider = Provider.FITBIT
            data_types = ("sleep",)

            def normalize_page(self, page, research_id, *, secret): ...

    ``P`` is what ``prepare`` hands to ``finish``: the checked columns of one page.
    """

    provider: Provider
    data_types: tuple[str, ...]

    @abstractmethod
    def prepare(self, page: RawPage, research_id: str, *, secret: bytes) -> P:
        """One page's Python work; a DecodeError means the page as a whole is unusable.

        :param secret: the key of per-participant pseudonyms (device ids).
        """

    @abstractmethod
    def finish(self, prepared: Sequence[P]) -> list[Normalized]:
        """The batches and rejects of every prepared page, one ``Normalized`` each, in order."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.provider.value}: {', '.join(self.data_types)})"


class PerPageNormalizer(Normalizer[Normalized]):
    """A format normalized page by page: a few small pages per participant-day, where one
    shared pass would save nothing. ``prepare`` does all the work, ``finish`` passes it on."""

    @abstractmethod
    def normalize_page(self, page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
        """All samples of one page; a DecodeError means the page as a whole is unusable."""

    def prepare(self, page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
        return self.normalize_page(page, research_id, secret=secret)

    def finish(self, prepared: Sequence[Normalized]) -> list[Normalized]:
        return list(prepared)


class Registry(Mapping[tuple[Provider, str], Normalizer[Any]]):
    """The normalizers by ``(provider, data_type)``, and the dispatcher over them.

    ::

        registry = Registry([FitbitIntraday(), FitbitSleep()])
        results = registry.normalize_pages([(page, "R1"), (other, "R2")], secret=key)

    :param normalizers: each claims ``(normalizer.provider, t)`` for every ``t`` of its
        ``data_types``; two claiming one pair is a ValueError.
    """

    def __init__(self, normalizers: Iterable[Normalizer[Any]]) -> None:
        self._by_key: dict[tuple[Provider, str], Normalizer[Any]] = {}
        for normalizer in normalizers:
            for data_type in normalizer.data_types:
                key = (normalizer.provider, data_type)
                if key in self._by_key:
                    raise ValueError(f"{key} is claimed by {self._by_key[key]!r} and {normalizer!r}")
                self._by_key[key] = normalizer

    def __getitem__(self, key: tuple[Provider, str]) -> Normalizer[Any]:
        return self._by_key[key]

    def __iter__(self) -> Iterator[tuple[Provider, str]]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def normalize(self, page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
        """All samples of one page, split into accepted batches and rejects.

        Raises DecodeError (with a reason and the bad field) when the page as a whole is unusable.
        The same route as many pages: one page is a call of ``normalize_pages`` with one page.
        """
        result = self.normalize_pages([(page, research_id)], secret=secret)[0]
        if isinstance(result, DecodeError):
            raise result
        return result

    def normalize_pages(self, pages: Sequence[tuple[RawPage, str]], *,
                        secret: bytes) -> list[Normalized | DecodeError]:
        """``normalize`` for many ``(page, research_id)`` pairs: each page's result, or the
        DecodeError that makes it unusable. Results equal those of pages one at a time.

        Pages are read one by one (``prepare``), then each normalizer finishes all of its pages
        in one call: the vectorised pass that makes many pages cheap.
        """
        results: dict[int, Normalized | DecodeError] = {}
        groups: dict[int, tuple[Normalizer[Any], list[int], list[Any]]] = {}
        for i, (page, research_id) in enumerate(pages):
            try:
                check_research_id(research_id)
                normalizer = self._by_key.get((page.provider, page.data_type))
                if normalizer is None:
                    raise DecodeError(f"no normalizer for {page.provider.value} {page.data_type!r}",
                                      reason=Reason.UNKNOWN_DATA_TYPE, field="data_type")
                prepared = normalizer.prepare(page, research_id, secret=secret)
            except DecodeError as error:
                results[i] = error
                continue
            _, members, items = groups.setdefault(id(normalizer), (normalizer, [], []))
            members.append(i)
            items.append(prepared)
        for normalizer, members, items in groups.values():
            for i, result in zip(members, normalizer.finish(items), strict=True):
                results[i] = result
        return [results[i] for i in range(len(pages))]


def check_research_id(research_id: str) -> None:
    """Refuse a key that is not a research id (``R`` + hex digits: ASCII letters and digits).

    The one check of the key on the normalize path: the stage only decodes the record key.
    """
    if not (research_id and research_id.isascii() and research_id.isalnum()):
        raise DecodeError("record key is not a research_id", reason=Reason.BAD_KEY, field="key")
