"""Apply a batch of sample batches to the stored days: dedup, bookkeeping, summaries, outputs.

Pure: stored day states come in as bytes and leave as bytes; the agent does the I/O. Every day
touched by the batch gets one new summary (revision + 1): that is the debounce.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np
import orjson
import polars as pl

from models.daily import HR_ZONES, DailySummary, daily_key
from models.dead_letter import DeadLetter
from models.errors import Reason
from models.providers import Provider
from models.samples import Metric, Resolution, SampleBatch, Unit, deletion_runs
from streams.daily.aggregate import DailyRules, summarize
from streams.daily.state import KEYED_SCHEMA, DayMeta, day_end_utc, pack_states, unpack_states
from streams.dedup import deduplicate

__all__ = ["DayPolicy", "DayUpdate", "apply_batches", "finalize_due", "header_of", "rows_of"]

_UNITS = {Metric.STEPS: Unit.STEPS, Metric.HEART_RATE: Unit.BPM, Metric.SLEEP_STAGE: Unit.SECONDS,
          Metric.DEVICE: Unit.PERCENT}
_METRIC_CODES = {metric: code for code, metric in enumerate(Metric)}
_RESOLUTIONS = {Metric.SLEEP_STAGE: Resolution.SEGMENT, Metric.VENDOR_DAILY: Resolution.DAY}


@dataclass(frozen=True, slots=True)
class DayPolicy:
    """When a day is final, when its state expires, and the research rules of its summary."""

    grace_s: int = 7 * 86400
    retention_s: int = 45 * 86400
    rules: DailyRules = field(default_factory=DailyRules)


@dataclass(slots=True)
class DayUpdate:
    states: dict[str, bytes] = field(default_factory=dict)  # table writes
    deletes: list[str] = field(default_factory=list)  # table deletes (expired days)
    summaries: list[DailySummary] = field(default_factory=list)  # to ``daily``
    intraday: list[SampleBatch] = field(default_factory=list)  # new/changed samples, to ``intraday``
    forwarded: list[int] = field(default_factory=list)  # input batches that go to ``intraday`` as they came
    letters: list[DeadLetter] = field(default_factory=list)  # arrivals for expired days
    new: int = 0
    duplicates: int = 0
    revisions: int = 0
    deleted: int = 0  # samples removed by vendor deletions

    def merge(self, later: DayUpdate) -> None:
        """Add a later part of the same take (its states and summaries win)."""
        self.states.update(later.states)
        self.deletes += later.deletes
        summaries = {s.key: s for s in [*self.summaries, *later.summaries]}  # the latest revision of each day
        self.summaries = list(summaries.values())
        self.intraday += later.intraday
        self.forwarded += later.forwarded
        self.letters += later.letters
        self.new, self.duplicates = self.new + later.new, self.duplicates + later.duplicates
        self.revisions, self.deleted = self.revisions + later.revisions, self.deleted + later.deleted


def rows_of(batches: Iterable[SampleBatch],
            extra: Mapping[str, Callable[[SampleBatch], str]] | None = None) -> pl.DataFrame:
    """Incoming batches as rows (``KEYED_SCHEMA``), in arrival order: one frame built from
    concatenated columns (per-batch Polars calls would dominate a batch of hundreds).
    ``extra`` adds String columns of per-batch values (name → value of a batch)."""
    extra = extra or {}
    batches = [b for b in batches if len(b)]
    if not batches:
        return pl.DataFrame(schema={**KEYED_SCHEMA, **dict.fromkeys(extra, pl.String())})
    lengths = np.array([len(b) for b in batches], dtype=np.int64)
    index = np.repeat(np.arange(len(batches)), lengths)
    ts: list[int] = []
    values: list[float] = []
    labels: list[str] = []
    durations: list[int | None] = []
    for batch in batches:  # list.extend per batch: C-level copies, not a loop per sample
        ts.extend(batch.timestamps)
        values.extend(batch.values)
        labels.extend(batch.labels if batch.labels is not None else [""] * len(batch))
        durations.extend(batch.durations if batch.durations is not None else [None] * len(batch))

    def per_batch(items: list[object], dtype: pl.DataType) -> pl.Series:
        return pl.Series(items, dtype=dtype).gather(index)

    return pl.DataFrame({
        "key": per_batch([daily_key(b.research_id, b.local_date) for b in batches], pl.String()),
        "metric": per_batch([b.metric.value for b in batches], pl.String()),
        "label": pl.Series(labels, dtype=pl.String).fill_null(""),
        "ts": pl.Series(ts, dtype=pl.Int64),
        "value": pl.Series(values, dtype=pl.Float64),
        "duration": pl.Series(durations, dtype=pl.Int64),
        "offset": per_batch([b.utc_offset_s for b in batches], pl.Int64()),
        "attrs": per_batch([orjson.dumps(b.attributes, option=orjson.OPT_SORT_KEYS).decode() for b in batches],
                           pl.String()),
    }, schema=KEYED_SCHEMA).with_columns(
        **{name: per_batch([value(b) for b in batches], pl.String()) for name, value in extra.items()})


def header_of(blob: bytes) -> dict[str, object]:
    """The bookkeeping header of a stored day, without unpacking its samples."""
    header: dict[str, object] = orjson.loads(blob.partition(b"\n")[0])
    return header


def apply_batches(batches: list[SampleBatch], stored: Mapping[str, bytes], *, policy: DayPolicy,
                  watermark: int) -> DayUpdate:
    """Apply arrivals to their days. ``stored`` holds the current bytes of the days they touch.

    Deletion batches (``SampleBatch.deleted``: the vendor withdrew samples) split the take into
    runs applied in arrival order, so that a sample deleted and then sent again comes back, and
    one sent and then deleted does not. Without deletions (nearly always) it is one pass.
    """
    if not any(batch.deleted for batch in batches):
        return _apply_arrivals(batches, list(range(len(batches))), stored, policy=policy, watermark=watermark)
    update, current = DayUpdate(), dict(stored)
    for deleting, positions in deletion_runs(batches):
        chosen = [batches[p] for p in positions]
        part = (_apply_deletions(chosen, current, policy=policy, watermark=watermark) if deleting
                else _apply_arrivals(chosen, positions, current, policy=policy, watermark=watermark))
        # ``forwarded`` would send a run's input ahead of an earlier run's deletions: keep one order
        part.intraday = [batches[p] for p in part.forwarded] + part.intraday
        part.forwarded = []
        update.merge(part)
        current.update(part.states)
    return update


def _expired(batch: SampleBatch, policy: DayPolicy, watermark: int) -> DeadLetter | None:
    if day_end_utc(batch.local_date, batch.utc_offset_s) + policy.retention_s >= watermark:
        return None
    return DeadLetter(
        stage="daily", reason=Reason.DAY_EXPIRED, key=batch.research_id.encode(), original=batch.to_bytes(),
        detail=f"{batch.local_date} is older than the state retention; replay with a longer retention",
        count=len(batch), at=time.time())


def _apply_arrivals(batches: list[SampleBatch], positions_in_take: list[int], stored: Mapping[str, bytes], *,
                    policy: DayPolicy, watermark: int) -> DayUpdate:
    update = DayUpdate()
    accepted, positions, stale_devices = [], [], []
    for position, batch in zip(positions_in_take, batches, strict=True):
        letter = _expired(batch, policy, watermark)
        if letter is None:
            accepted.append(batch)
            positions.append(position)
        elif batch.metric is Metric.DEVICE:
            # a device that last synced before the retention (a scale in a drawer) is a snapshot,
            # not late data: on to ``intraday`` as it is (the device table upserts it), no day state
            stale_devices.append(position)
        else:
            update.letters.append(letter)
    if not accepted:
        update.forwarded = stale_devices
        return update
    incoming = rows_of(accepted)
    touched = list(dict.fromkeys(daily_key(b.research_id, b.local_date) for b in accepted))
    stored_rows, metas = unpack_states({k: stored[k] for k in touched if k in stored})
    stored_rows, superseded = _superseded_stages(accepted, stored_rows)
    result = deduplicate(stored_rows, incoming)
    counts = {row[0]: row[1:] for row in result.counts.select("key", "new", "duplicates", "revisions").iter_rows()}
    first = {daily_key(b.research_id, b.local_date): b for b in reversed(accepted)}
    rejected = _rejected(accepted)
    processing = _processing(accepted)
    for key in touched:
        new, duplicates, revisions = counts.get(key, (0, 0, 0))
        old = metas.get(key) or DayMeta(offset=first[key].utc_offset_s, source=first[key].source.value)
        changed = new + revisions > 0
        metas[key] = old.with_(revision=old.revision + 1, duplicates=old.duplicates + duplicates,
                               revisions=old.revisions + revisions, late=old.late or (old.final and changed),
                               rejected=sorted(set(old.rejected) | rejected.get(key, set())),
                               unprocessed=processing.get(key, old.unprocessed))
        update.new, update.duplicates, update.revisions = (update.new + new, update.duplicates + duplicates,
                                                           update.revisions + revisions)
    for key, count in superseded.group_by("key").len().iter_rows():  # a session's stages replaced: revisions
        metas[key] = metas[key].with_(revisions=metas[key].revisions + int(count))
        update.revisions += int(count)
    rows = result.rows.filter(pl.col("key").is_in(touched))
    update.states = pack_states(rows, {k: metas[k] for k in touched})
    update.summaries = summaries_for(rows, {k: metas[k] for k in touched}, policy.rules)
    if superseded.height:  # the sink removes the old stages first, then writes the new ones
        update.intraday = [replace(b, deleted=[[min(b.timestamps), max(b.timestamps) + 1]])
                           for b in _intraday(superseded, first)] + _intraday(result.changed, first)
    elif result.all_new:  # the batches hold exactly the new samples: forward them, bytes and all
        update.forwarded = [p for p, b in zip(positions, accepted, strict=True) if len(b)]
    else:
        update.intraday = _intraday(result.changed, first)
    update.forwarded += stale_devices
    return update


def _superseded_stages(accepted: list[SampleBatch], stored: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(stored rows kept, stored sleep stages superseded): a sleep session's stages arrive whole,
    so a stored stage of a session (``log_id``) that its new batch no longer has is gone, as when
    the vendor recomputes the stages once it has processed the night (Google ``processed``) or
    rescores them. Keeping it would count the night's minutes twice."""
    sessions = [b for b in accepted if b.metric is Metric.SLEEP_STAGE and b.attributes.get("log_id") is not None]
    if not sessions or stored.height == 0:
        return stored, stored.clear()
    now = pl.DataFrame({
        "key": [daily_key(b.research_id, b.local_date) for b in sessions for _ in b.timestamps],
        "log_id": [str(b.attributes["log_id"]) for b in sessions for _ in b.timestamps],
        "label": [label for b in sessions for label in (b.labels or [""] * len(b))],
        "ts": [t for b in sessions for t in b.timestamps],
        "offset": [b.utc_offset_s for b in sessions for _ in b.timestamps],
    }, schema={"key": pl.String, "log_id": pl.String, "label": pl.String, "ts": pl.Int64, "offset": pl.Int64})
    # per UTC offset too: a night across a clock change comes as two batches, which two takes
    # may split; each replaces only its own part
    logs = now.select("key", "log_id", "offset").unique()
    # only the stored stages of these days: a take holds hundreds of days, and reading attributes is not free
    stages = stored.with_row_index("row").filter(
        (pl.col("metric") == Metric.SLEEP_STAGE.value) & pl.col("key").is_in(logs["key"].unique().implode()))
    candidates = stages.with_columns(log_id=pl.col("attrs").str.json_path_match("$.log_id")).join(
        logs, on=["key", "log_id", "offset"])
    gone = candidates.join(now, on=["key", "log_id", "label", "ts"], how="anti")["row"]
    if gone.len() == 0:
        return stored, stored.clear()
    superseded = pl.int_range(pl.len(), dtype=pl.UInt32).is_in(gone.implode())
    return stored.filter(~superseded), stored.filter(superseded)


def _apply_deletions(deletions: list[SampleBatch], stored: Mapping[str, bytes], *, policy: DayPolicy,
                     watermark: int) -> DayUpdate:
    """Remove the withdrawn samples from their days: a revision of each day that lost any, and
    the removed samples to ``intraday`` (marked ``deleted``) for the sink to remove too. A day
    that had none of them is left as it was (not revised); one without state has nothing to lose."""
    update = DayUpdate()
    live = []
    for batch in deletions:
        letter = _expired(batch, policy, watermark)
        if letter is not None:
            update.letters.append(letter)
        elif daily_key(batch.research_id, batch.local_date) in stored:
            live.append(batch)
    keys = list(dict.fromkeys(daily_key(b.research_id, b.local_date) for b in live))
    if not keys:
        return update
    rows, metas = unpack_states({k: stored[k] for k in keys})
    withdrawn = pl.lit(False)
    for batch in live:
        withdrawn = withdrawn | _withdrawn_by(batch)
    rows = rows.with_columns(withdrawn=withdrawn)
    removed = rows.filter(pl.col("withdrawn")).drop("withdrawn")
    if removed.height == 0:
        return update
    lost = removed.group_by("key").len()
    changed = dict(lost.iter_rows())
    kept = rows.filter(~pl.col("withdrawn") & pl.col("key").is_in(list(changed))).drop("withdrawn")
    for key, count in changed.items():
        old = metas[key]
        metas[key] = old.with_(revision=old.revision + 1, deleted=old.deleted + int(count), late=old.late or old.final)
    changed_metas = {k: metas[k] for k in changed}
    update.states = pack_states(kept, changed_metas)
    update.summaries = summaries_for(kept, changed_metas, policy.rules)
    update.deleted = removed.height
    first = {daily_key(b.research_id, b.local_date): b for b in reversed(live)}
    intervals = _intervals_by_key_metric(live)
    update.intraday = [replace(batch, deleted=intervals[(daily_key(batch.research_id, batch.local_date),
                                                         batch.metric)])
                       for batch in _intraday(removed, first)]
    return update


def _withdrawn_by(batch: SampleBatch) -> pl.Expr:
    """The rows one deletion batch withdraws: its day and metric, a time in one of its intervals
    (UTC, or local wall-clock time for ``clock: local``); for ``clock: day``, the day's figure of
    that label whatever its time."""
    day = (pl.col("key") == daily_key(batch.research_id, batch.local_date)) & (pl.col("metric") == batch.metric.value)
    if batch.attributes.get("clock") == "day":  # a daily figure: the day's one value of that label
        return day & (pl.col("label") == str(batch.attributes.get("label")))
    at = pl.col("ts") + pl.col("offset") if batch.attributes.get("clock") == "local" else pl.col("ts")
    inside = pl.lit(False)
    for start, end in batch.deleted:
        inside = inside | ((at >= start) & (at < end))
    return day & inside


def _intervals_by_key_metric(batches: list[SampleBatch]) -> dict[tuple[str, Metric], list[list[int]]]:
    out: dict[tuple[str, Metric], list[list[int]]] = {}
    for batch in batches:
        out.setdefault((daily_key(batch.research_id, batch.local_date), batch.metric), []).extend(batch.deleted)
    return out


def _processing(batches: list[SampleBatch]) -> dict[str, bool]:
    """Per day, whether its latest sleep batch says the vendor is still processing the session
    (``processed`` false); days without a sleep batch keep what they had."""
    out: dict[str, bool] = {}
    for batch in batches:
        processed = batch.attributes.get("processed")
        if isinstance(processed, bool):
            out[daily_key(batch.research_id, batch.local_date)] = not processed
    return out


def finalize_due(stored: Mapping[str, bytes], *, policy: DayPolicy, watermark: int) -> DayUpdate:
    """Days that passed the grace period become final (one last revision); days past retention expire.

    A day whose sleep the vendor is still processing (``unprocessed``: stages follow in a later
    page) stays open for twice the grace period, within the retention: its revision would
    otherwise land on a final day as ``late``.
    """
    update = DayUpdate()
    due: dict[str, bytes] = {}
    for key, blob in stored.items():
        header = header_of(blob)
        end = day_end_utc(key.rpartition("|")[2], cast(int, header["off"]))  # state.pack_states writes an int
        grace = min(2 * policy.grace_s, policy.retention_s) if header.get("unp") else policy.grace_s
        if end + policy.retention_s < watermark:
            update.deletes.append(key)
        elif not header["final"] and end + grace < watermark:
            due[key] = blob
    if due:
        rows, metas = unpack_states(due)
        metas = {k: m.with_(final=True, revision=m.revision + 1) for k, m in metas.items()}
        update.states = pack_states(rows, metas)
        update.summaries = summaries_for(rows, metas, policy.rules)
    return update


def summaries_for(rows: pl.DataFrame, metas: Mapping[str, DayMeta], rules: DailyRules) -> list[DailySummary]:
    fields = {r["key"]: r for r in summarize(rows, rules).iter_rows(named=True)} if rows.height else {}
    out = []
    for key, meta in metas.items():
        research_id, _, local_date = key.rpartition("|")
        f = fields.get(key, {})
        stages = dict(zip(f.get("stage_labels") or [], f.get("stage_minutes") or [], strict=True))
        out.append(DailySummary(
            research_id=research_id, local_date=local_date, revision=meta.revision, final=meta.final, late=meta.late,
            steps=int(f.get("steps") or 0), vendor_steps=f.get("vendor_steps"), hr_min=f.get("hr_min"),
            hr_max=f.get("hr_max"), hr_mean=f.get("hr_mean"), minutes_with_hr=int(f.get("minutes_with_hr") or 0),
            vendor_resting_hr=f.get("vendor_resting_hr"), approx_resting_hr=f.get("approx_resting_hr"),
            zone_minutes={name: int(f.get(f"zone_{i}") or 0) for i, name in enumerate(HR_ZONES)}
            if f.get("hr_min") is not None else {},
            hours_with_steps=int(f.get("hours_with_steps") or 0), valid_day=bool(f.get("valid_day")),
            sleep_minutes_asleep=f.get("sleep_minutes_asleep"), sleep_minutes_in_bed=f.get("sleep_minutes_in_bed"),
            sleep_stage_minutes={str(k): int(v) for k, v in stages.items()},
            samples=int(f.get("samples") or 0), duplicates=meta.duplicates, revisions=meta.revisions,
            rejects=len(meta.rejected), first_sample_at=f.get("first_sample_at"),
            last_sample_at=f.get("last_sample_at"), source=meta.source or None,
        ))
    return out


def _rejected(batches: list[SampleBatch]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for batch in batches:
        if batch.rejected_timestamps:
            key = daily_key(batch.research_id, batch.local_date)
            code = _METRIC_CODES[batch.metric]  # one integer per (metric, time): deterministic across processes
            out.setdefault(key, set()).update(t * 16 + code for t in batch.rejected_timestamps)
    return out


def _intraday(changed: pl.DataFrame, first: Mapping[str, SampleBatch]) -> list[SampleBatch]:
    out = []
    for (key, metric, offset, attrs), rows in changed.group_by("key", "metric", "offset", "attrs", maintain_order=True):
        batch = first[str(key)]
        metric_ = Metric(str(metric))
        labelled = bool((rows["label"] != "").any())
        out.append(SampleBatch(
            research_id=batch.research_id, metric=metric_, unit=_UNITS.get(metric_, Unit.MIXED),
            resolution=_RESOLUTIONS.get(metric_, batch.resolution if batch.metric is metric_ else Resolution.EVENT),
            source=Provider(batch.source), utc_offset_s=int(offset), local_date=batch.local_date,
            timestamps=rows["ts"].to_list(), values=rows["value"].to_list(),
            labels=rows["label"].to_list() if labelled else None,
            durations=rows["duration"].to_list() if rows["duration"].null_count() < rows.height else None,
            attributes=orjson.loads(str(attrs)),
        ))
    return out
