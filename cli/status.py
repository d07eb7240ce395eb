"""`wearables status`: a live terminal view of the running processes, read from their ``/metrics``.

What a data engineer opens first: throughput per stage, consumer lag per topic, dead letters by
reason, the vendor APIs' health, how fresh the newest sample is, and the cohort's completeness.
Every figure comes from the processes' Prometheus endpoints: those recorded by a running demo in
``<data dir>/demo.json`` (``discovery_file``), or those given with ``--url``. Rates are the
difference of two scrapes divided by the seconds between them, as Prometheus' ``rate()`` would.

The parts are kept apart so that each can be tested alone: ``Snapshot.from_text`` parses one
scrape, ``figures(before, after, seconds)`` computes (pure), ``render(figures)`` draws (rich), and
``status`` is the click command that scrapes and refreshes. A metric a process does not export
shows as "n/a": the view never fails because one figure is missing.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import click
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cli.console import console, fail, settings_from_env

__all__ = [
    "DISCOVERY_FILE",
    "STAGES",
    "DeadLetterRow",
    "LagRow",
    "Rate",
    "Snapshot",
    "StatusFigures",
    "discover_urls",
    "discovery_file",
    "figures",
    "lag_by_topic",
    "rates",
    "render",
    "scrape",
    "status",
]

#: written by `wearables demo` into the data directory while it runs
DISCOVERY_FILE = "demo.json"
_SCRAPE_TIMEOUT_S = 3.0
_HOW_TO = "is the demo running (`wearables demo --keep-running`)? else pass --url http://host:port/metrics"

Labels = Mapping[str, str]
Key = tuple[str, ...]


# --------------------------------------------------------------------------- parsing
@dataclass(frozen=True, slots=True)
class Snapshot:
    """One scrape (or several, merged): every sample by name, and the families declared.

    A labelled counter nobody has incremented yet has a family but no sample; ``declared`` tells
    it apart from a metric the process does not have at all ("0" rather than "n/a").
    """

    samples: Mapping[str, tuple[tuple[Labels, float], ...]]
    families: frozenset[str] = frozenset()
    taken_at: float = 0.0  # wall clock, for freshness (time() - a timestamp gauge)

    @classmethod
    def from_text(cls, text: str, taken_at: float | None = None) -> Snapshot:
        samples: dict[str, list[tuple[Labels, float]]] = {}
        families: set[str] = set()
        for family in text_string_to_metric_families(text):
            families.add(family.name)
            for sample in family.samples:
                if math.isfinite(sample.value):  # a NaN gauge says nothing, and would poison every sum
                    samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return cls({name: tuple(values) for name, values in samples.items()}, frozenset(families),
                   time.time() if taken_at is None else taken_at)

    @classmethod
    def merged(cls, snapshots: Sequence[Snapshot]) -> Snapshot:
        """Several processes' scrapes as one: their series side by side (counters then add up)."""
        samples: dict[str, list[tuple[Labels, float]]] = {}
        for snapshot in snapshots:
            for name, values in snapshot.samples.items():
                samples.setdefault(name, []).extend(values)
        return cls({name: tuple(values) for name, values in samples.items()},
                   frozenset().union(*(s.families for s in snapshots)),
                   max((s.taken_at for s in snapshots), default=0.0))

    def declared(self, name: str) -> bool:
        """Whether the process exports ``name`` (a sample name such as ``x_total``), even without samples yet."""
        return name in self.samples or name in self.families or name.removesuffix("_total") in self.families

    def grouped(self, name: str, by: Sequence[str], combine: Callable[[Iterable[float]], float] = sum
                ) -> dict[Key, float]:
        """``name``'s values combined per value of the labels ``by`` (a missing label counts as "")."""
        groups: dict[Key, list[float]] = {}
        for labels, value in self.samples.get(name, ()):
            groups.setdefault(tuple(labels.get(label, "") for label in by), []).append(value)
        return {key: combine(values) for key, values in groups.items()}


# --------------------------------------------------------------------------- figures
@dataclass(frozen=True, slots=True)
class Rate:
    """A counter's total at the second scrape and its increase per second between the two."""

    total: float
    per_s: float


@dataclass(frozen=True, slots=True)
class LagRow:
    group: str
    topic: str
    lag: float
    change_per_s: float | None  # > 0: falling behind; None: not in the first scrape


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    stage: str
    reason: str
    rate: Rate


#: the stages, upstream first: (what is counted, the counter)
STAGES: tuple[tuple[str, str], ...] = (
    ("raw pages", "wearables_normalize_pages_total"),
    ("samples", "wearables_normalize_samples_total"),
    ("sample batches", "wearables_normalize_batches_total"),
    ("daily summaries", "wearables_daily_summaries_total"),
    ("sink rows", "wearables_sink_rows_total"),
)
_LAG = "wearables_consumer_group_lag"
_FAUST_END = "wearables_faust_topic_partition_end_offset"
_FAUST_COMMITTED = "wearables_faust_topic_partition_offset_commited"  # sic: Faust's spelling
_FAUST_GROUP = "worker (Faust offsets)"


@dataclass(frozen=True, slots=True)
class StatusFigures:
    """Everything the view shows; ``None`` wherever the processes do not export the metric."""

    seconds: float
    taken_at: float
    throughput: tuple[tuple[str, Rate | None], ...]
    lag: tuple[LagRow, ...] | None
    lag_source: str
    dead_letters: tuple[DeadLetterRow, ...] | None
    vendor_requests: dict[tuple[str, str], Rate] | None  # (provider, outcome)
    rate_limit_remaining: dict[str, float] | None  # provider
    token_refreshes: dict[str, Rate] | None  # outcome
    freshness_s: dict[str, float] | None  # provider: seconds since its newest sample
    valid_day_share: dict[str, float] | None  # window
    without_data: dict[str, float] | None  # days: participants
    unreachable: dict[str, str] = field(default_factory=dict)  # url: why


def rates(before: Snapshot, after: Snapshot, name: str, by: Sequence[str], seconds: float
          ) -> dict[Key, Rate] | None:
    """Per-second increase of counter ``name`` per value of ``by``; ``None`` if not exported."""
    if not after.declared(name):
        return None
    first, second = before.grouped(name, by), after.grouped(name, by)
    result = {}
    for key, total in second.items():
        increase = total - first.get(key, 0.0)  # a series born between the scrapes started at 0
        if increase < 0:  # a process restarted: its counter began again from 0
            increase = total
        result[key] = Rate(total, increase / seconds if seconds > 0 else 0.0)
    return result


def _total_rate(before: Snapshot, after: Snapshot, name: str, seconds: float) -> Rate | None:
    found = rates(before, after, name, (), seconds)
    if found is None:
        return None
    return Rate(sum(r.total for r in found.values()), sum(r.per_s for r in found.values()))


def lag_by_topic(snapshot: Snapshot) -> tuple[dict[tuple[str, str], float], str] | None:
    """Records not yet consumed, per (group, topic): the lag gauge, else Faust's offsets; ``None``: neither."""
    if snapshot.declared(_LAG):
        # the same partition reported twice (two processes) is one partition: max, then sum over partitions
        partitions = snapshot.grouped(_LAG, ("group", "topic", "partition"), max)
        summed: dict[tuple[str, str], float] = {}
        for (group, topic, _), lag in partitions.items():
            summed[(group, topic)] = summed.get((group, topic), 0.0) + lag
        return summed, "wearables_consumer_group_lag"
    if snapshot.declared(_FAUST_END) and snapshot.declared(_FAUST_COMMITTED):
        ends = snapshot.grouped(_FAUST_END, ("topic", "partition"), max)
        committed = snapshot.grouped(_FAUST_COMMITTED, ("topic", "partition"), max)
        summed = {}
        for (topic, partition), end in ends.items():
            if (topic, partition) in committed:  # a partition never committed has no lag to tell yet
                key = (_FAUST_GROUP, topic)
                summed[key] = summed.get(key, 0.0) + max(0.0, end - committed[(topic, partition)])
        return summed, "end offset - committed offset (Faust)"
    return None


def _lag_rows(before: Snapshot, after: Snapshot, seconds: float) -> tuple[tuple[LagRow, ...] | None, str]:
    now = lag_by_topic(after)
    if now is None:
        return None, "n/a"
    earlier = lag_by_topic(before)
    first = earlier[0] if earlier is not None else {}
    rows = tuple(LagRow(group, topic, lag, (lag - first[(group, topic)]) / seconds
                        if (group, topic) in first and seconds > 0 else None)
                 for (group, topic), lag in sorted(now[0].items()))
    return rows, now[1]


def _gauge(snapshot: Snapshot, name: str, label: str, combine: Callable[[Iterable[float]], float]
           ) -> dict[str, float] | None:
    if not snapshot.declared(name):
        return None
    return {key[0]: value for key, value in sorted(snapshot.grouped(name, (label,), combine).items())}


def _freshness(snapshot: Snapshot) -> dict[str, float] | None:
    newest = _gauge(snapshot, "wearables_daily_newest_sample_timestamp_seconds", "provider", max)
    if newest is None:
        return None
    # 0 is a gauge never set: no sample yet, so no age to tell
    return {provider: max(0.0, snapshot.taken_at - stamp) for provider, stamp in newest.items() if stamp > 0}


def figures(before: Snapshot, after: Snapshot, seconds: float,
            unreachable: Mapping[str, str] | None = None) -> StatusFigures:
    """Every figure of the view from two scrapes ``seconds`` apart (pure: no I/O, no clock)."""
    lag, lag_source = _lag_rows(before, after, seconds)
    dead = rates(before, after, "wearables_dead_letters_total", ("stage", "reason"), seconds)
    vendor = rates(before, after, "wearables_connector_requests_total", ("provider", "outcome"), seconds)
    refreshes = rates(before, after, "wearables_connector_token_refreshes_total", ("outcome",), seconds)
    return StatusFigures(
        seconds=seconds,
        taken_at=after.taken_at,
        throughput=tuple((stage, _total_rate(before, after, name, seconds)) for stage, name in STAGES),
        lag=lag,
        lag_source=lag_source,
        # series exported at 0 from the start (runtime.metrics ``initial``) are left out until they count
        dead_letters=None if dead is None else tuple(
            DeadLetterRow(stage, reason, rate) for (stage, reason), rate in sorted(dead.items()) if rate.total),
        vendor_requests=None if vendor is None else {(p, o): r for (p, o), r in sorted(vendor.items()) if r.total},
        # several series for one provider (per data type, per process): the tightest is what binds
        rate_limit_remaining=_gauge(after, "wearables_connector_rate_limit_remaining", "provider", min),
        token_refreshes=None if refreshes is None else {key[0]: r for key, r in sorted(refreshes.items()) if r.total},
        freshness_s=_freshness(after),
        valid_day_share=_gauge(after, "wearables_cohort_valid_day_share", "window", max),
        without_data=_gauge(after, "wearables_cohort_participants_without_data", "days", max),
        unreachable=dict(unreachable or {}),
    )


# --------------------------------------------------------------------------- rendering
_NA = Text("n/a", style="dim")


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _per_s(value: float) -> str:
    return f"{value:,.1f}/s" if value < 100 else f"{value:,.0f}/s"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 172_800 else f"{seconds / 86400:.1f} d"


def _table(title: str, *columns: str) -> Table:
    table = Table(*columns, title=title, title_justify="left", title_style="bold", expand=True)
    for column in table.columns[1:]:
        column.justify = "right"
    return table


def _throughput(f: StatusFigures) -> Table:
    table = _table("throughput", "stage", "per second", "total")
    for stage, rate in f.throughput:
        if rate is None:
            table.add_row(stage, _NA, _NA)
        else:
            table.add_row(stage, _per_s(rate.per_s), _number(rate.total))
    return table


def _lag(f: StatusFigures) -> RenderableType:
    table = _table(f"consumer lag ({f.lag_source})", "group", "topic", "lag", "change")
    for column in table.columns[:2]:
        column.justify = "left"
    if f.lag is None:
        table.add_row(_NA, "", "", "")
    elif not f.lag:
        table.add_row(Text("no partition reported yet", style="dim"), "", "", "")
    for row in f.lag or ():
        change = _NA if row.change_per_s is None else Text(
            f"{row.change_per_s:+,.1f}/s", style="red" if row.change_per_s > 0 else "green")
        table.add_row(row.group, row.topic, _number(row.lag), change)
    return table


def _dead_letters(f: StatusFigures) -> Table:
    table = _table("dead letters", "stage", "reason", "per second", "total")
    table.columns[1].justify = "left"
    if f.dead_letters is None:
        table.add_row(_NA, "", "", "")
    elif not f.dead_letters:
        table.add_row(Text("none", style="green"), "", "", "")
    for row in f.dead_letters or ():
        table.add_row(row.stage, row.reason, _per_s(row.rate.per_s), Text(_number(row.rate.total), style="yellow"))
    return table


def _vendors(f: StatusFigures) -> RenderableType:
    requests = _table("vendor API calls", "provider", "outcome", "per second", "total")
    requests.columns[1].justify = "left"
    if not f.vendor_requests:
        requests.add_row(_NA if f.vendor_requests is None else Text("none yet", style="dim"), "", "", "")
    for (provider, outcome), rate in (f.vendor_requests or {}).items():
        style = "" if outcome == "ok" else "yellow"
        requests.add_row(provider, Text(outcome, style=style), _per_s(rate.per_s), _number(rate.total))
    limits = _table("rate limit remaining", "provider", "requests")
    if not f.rate_limit_remaining:
        limits.add_row(_NA, "")
    for provider, remaining in (f.rate_limit_remaining or {}).items():
        limits.add_row(provider, _number(remaining))
    tokens = _table("token refreshes", "outcome", "per second", "total")
    if not f.token_refreshes:
        tokens.add_row(_NA if f.token_refreshes is None else Text("none yet", style="dim"), "", "")
    for outcome, rate in (f.token_refreshes or {}).items():
        tokens.add_row(outcome, _per_s(rate.per_s), _number(rate.total))
    return Group(requests, limits, tokens)


def _freshness_table(f: StatusFigures) -> Table:
    table = _table("freshness (age of the newest sample)", "provider", "age")
    if not f.freshness_s:
        table.add_row(_NA if f.freshness_s is None else Text("no sample yet", style="dim"), "")
    for provider, age in (f.freshness_s or {}).items():
        table.add_row(provider, _age(age))
    return table


def _completeness(f: StatusFigures) -> RenderableType:
    share = _table("valid-day share", "window", "share")
    if not f.valid_day_share:
        share.add_row(_NA, "")
    for window, value in (f.valid_day_share or {}).items():
        share.add_row(window, f"{value:.1%}")
    missing = _table("participants without data", "for days", "participants")
    if not f.without_data:
        missing.add_row(_NA, "")
    for days, count in (f.without_data or {}).items():
        missing.add_row(days, _number(count))
    return Group(share, missing)


def render(f: StatusFigures, *, wide: bool = True) -> RenderableType:
    """One frame: a header line, then the sections in two columns (``wide``) or one below the other."""
    stamp = datetime.fromtimestamp(f.taken_at).strftime("%H:%M:%S") if f.taken_at else "-"
    header = Text(f"wearables status · rates over {f.seconds:.1f} s · {stamp}", style="bold")
    notes = [Text(f"unreachable: {url} ({why})", style="red") for url, why in f.unreachable.items()]
    sections: list[RenderableType] = [_throughput(f), _lag(f), _vendors(f), _dead_letters(f), _freshness_table(f),
                                      _completeness(f)]
    if not wide:
        return Group(header, *notes, *sections)
    grid = Table.grid(expand=True, padding=(0, 2))
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    for left, right in zip(sections[::2], sections[1::2], strict=True):
        grid.add_row(left, right)
    return Group(header, *notes, grid)


# --------------------------------------------------------------------------- discovery and scraping
def discover_urls(data_dir: Path) -> list[str] | None:
    """The metrics URLs a running demo recorded in ``<data_dir>/demo.json``; ``None`` when there is none."""
    path = data_dir / DISCOVERY_FILE
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    urls = recorded.get("metrics") if isinstance(recorded, dict) else None
    return [str(url) for url in urls] if isinstance(urls, list) and urls else None


@contextlib.contextmanager
def discovery_file(data_dir: Path, urls: Sequence[str]) -> Iterator[Path]:
    """Record ``urls`` in ``<data_dir>/demo.json`` while the block runs (for `wearables status`), then remove it."""
    path = data_dir / DISCOVERY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    content = json.dumps({"metrics": list(urls), "pid": os.getpid()}, indent=2) + "\n"
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(content, encoding="utf-8")
    partial.replace(path)  # a reader never sees half a file
    try:
        yield path
    finally:
        # another demo started since owns the file now: leave its record alone
        with contextlib.suppress(OSError):
            if path.read_text(encoding="utf-8") == content:
                path.unlink()


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=_SCRAPE_TIMEOUT_S) as answer:  # noqa: S310 - the operator's own URLs
        body: bytes = answer.read()
    return body.decode("utf-8")


def _why(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error) or type(error).__name__


def scrape(urls: Sequence[str], fetch: Callable[[str], str] = _fetch) -> tuple[Snapshot | None, dict[str, str]]:
    """Every URL at once; the answers merged into one snapshot (``None`` if none answered), and why others did not."""
    def one(url: str) -> str | Exception:
        try:
            return fetch(url)
        except (OSError, ValueError) as error:  # URLError is an OSError; a bad URL a ValueError
            return error

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(urls)))) as pool:
        answers = list(pool.map(one, urls))
    taken_at = time.time()
    snapshots, failed = [], {}
    for url, answer in zip(urls, answers, strict=True):
        if isinstance(answer, Exception):
            failed[url] = _why(answer)
            continue
        try:
            snapshots.append(Snapshot.from_text(answer, taken_at))
        except ValueError as error:  # not the Prometheus text format: a wrong URL
            failed[url] = f"not Prometheus metrics ({error})"
    return (Snapshot.merged(snapshots) if snapshots else None), failed


def _targets(urls: Sequence[str]) -> tuple[list[str], str]:
    """The URLs to scrape and, for error messages, where they came from."""
    if urls:
        return list(urls), "--url"
    data_dir = settings_from_env().data_dir
    found = discover_urls(data_dir)
    if found is None:
        fail(f"no running demo found ({data_dir / DISCOVERY_FILE} is missing): start `wearables demo "
             "--keep-running`, or pass --url http://host:port/metrics")
    return found, str(data_dir / DISCOVERY_FILE)


def _reasons(failed: Mapping[str, str]) -> str:
    return "; ".join(f"{url} ({why})" for url, why in failed.items())


def _first_scrape(urls: Sequence[str], source: str) -> tuple[Snapshot, float]:
    snapshot, failed = scrape(urls)
    if snapshot is None:
        fail(f"no metrics endpoint answers ({source}): {_reasons(failed)}: {_HOW_TO}")
    return snapshot, time.monotonic()


@click.command("status")
@click.option("--url", "urls", multiple=True, metavar="URL",
              help="A process's metrics endpoint, e.g. http://127.0.0.1:9466/metrics (repeatable; their figures "
                   "add up). Default: the running demo's, from WEARABLES_DATA_DIR/demo.json.")
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=2.0, show_default=True,
              help="Seconds between the two scrapes a rate is computed from, and between refreshes.")
@click.option("--once", is_flag=True, help="Print one frame (two scrapes --interval apart) and exit.")
def status(urls: tuple[str, ...], interval: float, once: bool) -> None:
    """A live view of the running processes from their /metrics: throughput per stage, consumer lag per
    topic, dead letters by reason, vendor API health, freshness and completeness.

    Refreshes every --interval seconds until Ctrl-C. A metric a process does not export shows n/a.
    Exits 2 when no endpoint answers.
    """
    targets, source = _targets(urls)
    before, started = _first_scrape(targets, source)
    wide = console.width >= 110  # two columns need room; a script's 80 columns get one
    if once:
        time.sleep(interval)
        after, failed = scrape(targets)
        if after is None:
            fail(f"no metrics endpoint answers any more ({source}): {_reasons(failed)}: {_HOW_TO}")
        console.print(render(figures(before, after, time.monotonic() - started, failed), wide=wide))
        return
    with contextlib.suppress(KeyboardInterrupt), \
            Live(Text("first scrape done; the rates follow in a moment", style="dim"), console=console,
                 refresh_per_second=4) as live:
        while True:
            time.sleep(interval)
            after, failed = scrape(targets)
            if after is None:  # keep the last good scrape: the rates resume once an endpoint is back
                live.update(Text(f"no metrics endpoint answers: {_reasons(failed)}; retrying ({_HOW_TO})",
                                 style="red"))
                continue
            now = time.monotonic()
            live.update(render(figures(before, after, now - started, failed), wide=console.width >= 110))
            before, started = after, now
