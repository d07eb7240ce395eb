"""Day state: one participant-day's deduplicated samples plus bookkeeping, and its compact bytes.

Stored in the ``days`` table (changelogged), one value per ``research_id|local_date`` key. A
minute-level day (~1,440 steps and ~1,440 heart-rate samples) packs to well under 4 KB:
samples are grouped into streams by (metric, label), timestamps are delta-encoded per stream,
integral values stored as integers, and the payload is zlib-compressed behind a JSON header.

Packing and unpacking work on many days at once (one sort, one numpy conversion), because a
worker touches hundreds of days per batch and per-day Polars calls would dominate.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import polars as pl

from models.errors import DecodeError, Reason

__all__ = ["KEYED_SCHEMA", "ROW_SCHEMA", "DayMeta", "day_end_utc", "pack_states", "sorted_streams", "unpack_states"]

#: The columns of a day's sample rows.
ROW_SCHEMA: dict[str, pl.DataType] = {
    "metric": pl.String(), "label": pl.String(), "ts": pl.Int64(), "value": pl.Float64(),
    "duration": pl.Int64(), "offset": pl.Int64(), "attrs": pl.String(),
}
#: Rows of many days: the table key first.
KEYED_SCHEMA: dict[str, pl.DataType] = {"key": pl.String(), **ROW_SCHEMA}
_STATE_VERSION = 1
_INT_LIMIT = 2**31 - 1


def day_end_utc(local_date: str, offset_s: int) -> int:
    """UTC epoch seconds of the end of a local day (the next local midnight)."""
    midnight = datetime.combine(date.fromisoformat(local_date) + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return int(midnight.timestamp()) - offset_s


@dataclass(frozen=True, slots=True)
class DayMeta:
    """What a day's state remembers besides its samples."""

    revision: int = 0
    final: bool = False
    late: bool = False
    duplicates: int = 0
    revisions: int = 0
    source: str = ""
    offset: int = 0  # the day's UTC offset (first seen), for its end in UTC
    rejected: list[int] = field(default_factory=list)  # distinct rejected sample times
    # a sleep session of the day is still being processed by the vendor (Google ``metadata.processed``
    # false: stages follow): the day stays open for revision past its grace period
    unprocessed: bool = False
    deleted: int = 0  # samples the vendor withdrew (DELETE notifications)

    def with_(self, **changes: Any) -> DayMeta:
        return replace(self, **changes)


def pack_states(rows: pl.DataFrame, metas: Mapping[str, DayMeta], *, level: int = 1) -> dict[str, bytes]:
    """Bytes for each key of ``metas``; ``rows`` holds their samples (``KEYED_SCHEMA``)."""
    rows = sorted_streams(rows)
    key_start = pl.col("key") != pl.col("key").shift(fill_value="")
    stream_start = key_start | (pl.col("metric") != pl.col("metric").shift()) | (
        pl.col("label") != pl.col("label").shift())
    one_attrs = rows["attrs"].n_unique() <= 1  # the usual case: no per-day attribute variety to code
    rows = rows.with_columns(
        delta=pl.when(stream_start).then(pl.col("ts")).otherwise(pl.col("ts").diff()),
        offset_delta=pl.when(key_start).then(pl.col("offset")).otherwise(pl.col("offset").diff()).cast(pl.Int32),
        duration_code=pl.col("duration").fill_null(-1).cast(pl.Int32),
        attr_code=pl.lit(0, dtype=pl.UInt16) if one_attrs
        else (pl.col("attrs").rank("dense").over("key") - 1).cast(pl.UInt16),
    )
    deltas = rows["delta"].to_numpy()
    values = rows["value"].to_numpy()
    offsets = rows["offset_delta"].to_numpy()
    durations = rows["duration_code"].to_numpy()
    attr_codes = rows["attr_code"].to_numpy()
    streams = rows.group_by("key", "metric", "label", maintain_order=True).len()
    spans = rows.group_by("key", maintain_order=True).agg(
        n=pl.len(), attrs=pl.col("attrs").unique().sort())  # code i = i-th attrs string of the key, sorted
    stream_lists: dict[str, list[list[Any]]] = {}
    for key, metric, label, n in streams.iter_rows():
        stream_lists.setdefault(key, []).append([metric, label, int(n)])
    out: dict[str, bytes] = {}
    position = 0
    for key, n, attrs in spans.iter_rows():
        part = slice(position, position + n)
        position += n
        out[key] = _pack_one(metas.get(key, DayMeta()), stream_lists[key], attrs, deltas[part], values[part],
                             offsets[part], attr_codes[part], durations[part], level)
    for key, meta in metas.items():  # days that lost all samples still keep their bookkeeping
        if key not in out:
            deltas, values, offsets, codes, durations = (np.zeros(0, dtype=d) for d in (
                np.int64, np.float64, np.int32, np.uint16, np.int32))
            out[key] = _pack_one(meta, [], [], deltas, values, offsets, codes, durations, level)
    return out


def sorted_streams(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` ordered by key, metric, label and time.

    Rows arrive as runs that are already one stream in time order (a sample batch, a stored
    day's stream). When no stream is split over two runs, ordering the runs is enough: a sort
    of a few thousand runs instead of a string sort of a million rows. Otherwise, a full sort.
    """
    if rows.height == 0:
        return rows
    stream = ["key", "metric", "label"]
    starts = rows.select(
        (pl.any_horizontal(pl.col(c) != pl.col(c).shift() for c in stream) | (pl.col("ts").diff() <= 0))
        .fill_null(True).arg_true())["key"]
    runs = rows[starts.to_list()].select(stream).with_columns(start=starts, n=starts.diff(-1).abs().fill_null(
        rows.height - starts[-1]))
    if runs.select(stream).is_duplicated().any():
        return rows.sort(*stream, "ts")
    runs = runs.sort(stream)
    lengths = runs["n"].to_numpy()
    # the row indices of each run, run after run in sorted order
    order = np.repeat(runs["start"].to_numpy() - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    return rows[order]


def _pack_one(meta: DayMeta, streams: list[list[Any]], names: list[str], deltas: Any, values: Any, offsets: Any,
              codes: Any, durations: Any, level: int) -> bytes:
    integral = bool(len(values) == 0 or (np.all(values == np.round(values)) and np.max(np.abs(values)) <= _INT_LIMIT))
    has_durations = bool(np.any(durations != -1))
    header = {"v": _STATE_VERSION, "rev": meta.revision, "final": meta.final, "late": meta.late,
              "dup": meta.duplicates, "revs": meta.revisions, "src": meta.source, "off": meta.offset,
              "rej": meta.rejected, "unp": meta.unprocessed, "del": meta.deleted, "streams": streams, "attrs": names,
              "int": integral, "dur": has_durations}
    parts = [deltas.astype(np.int64).tobytes(), (values.astype(np.int32) if integral else values).tobytes(),
             offsets.tobytes(), codes.tobytes()]
    if has_durations:
        parts.append(durations.tobytes())
    return orjson.dumps(header) + b"\n" + zlib.compress(b"".join(parts), level)


def unpack_states(blobs: Mapping[str, bytes]) -> tuple[pl.DataFrame, dict[str, DayMeta]]:
    """Rows (``KEYED_SCHEMA``) and metadata of the given packed days."""
    metas: dict[str, DayMeta] = {}
    columns: dict[str, list[Any]] = {name: [] for name in ("key", "stream", "ts", "value", "offset", "attr", "dur")}
    stream_names: list[tuple[str, str]] = []
    attr_names: list[str] = []
    for key, blob in blobs.items():
        header, arrays = _unpack_one(blob)
        metas[key] = DayMeta(revision=header["rev"], final=header["final"], late=header["late"],
                             duplicates=header["dup"], revisions=header["revs"], source=header["src"],
                             offset=header["off"], rejected=list(header["rej"]),
                             unprocessed=bool(header.get("unp", False)), deleted=int(header.get("del", 0)))
        n = len(arrays["ts"])
        if n == 0:
            continue
        counts = [c for _, _, c in header["streams"]]
        columns["key"].append(np.full(n, len(metas) - 1, dtype=np.int32))
        columns["stream"].append(np.repeat(np.arange(len(stream_names), len(stream_names) + len(counts)), counts))
        stream_names += [(m, lab) for m, lab, _ in header["streams"]]
        columns["attr"].append(arrays["attr"].astype(np.int64) + len(attr_names))
        attr_names += header["attrs"]
        for name in ("ts", "value", "offset", "dur"):
            columns[name].append(arrays[name])
    keys = list(metas)
    if not columns["ts"]:
        return pl.DataFrame(schema=KEYED_SCHEMA), metas
    streams_idx = np.concatenate(columns["stream"])
    durations = np.concatenate(columns["dur"])
    rows = pl.DataFrame({
        "key": pl.Series(keys, dtype=pl.String).gather(np.concatenate(columns["key"])),
        "metric": pl.Series([m for m, _ in stream_names], dtype=pl.String).gather(streams_idx),
        "label": pl.Series([lab for _, lab in stream_names], dtype=pl.String).gather(streams_idx),
        "ts": np.concatenate(columns["ts"]),
        # a null value (a device without a battery level) is packed as NaN; no valid value is NaN
        "value": pl.Series(np.concatenate(columns["value"]), dtype=pl.Float64, nan_to_null=True),
        "duration": pl.Series(durations, dtype=pl.Int64).replace(-1, None),
        "offset": np.concatenate(columns["offset"]),
        "attrs": pl.Series(attr_names, dtype=pl.String).gather(np.concatenate(columns["attr"])),
    }, schema=KEYED_SCHEMA)
    return rows, metas


def _unpack_one(blob: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    head, newline, body = blob.partition(b"\n")
    if not newline:
        raise DecodeError("day state has no header line", reason=Reason.BAD_ENVELOPE)
    header = orjson.loads(head)
    if header.get("v") != _STATE_VERSION:
        raise DecodeError("day state version is not supported", reason=Reason.UNSUPPORTED_SCHEMA, field="v")
    payload = zlib.decompress(body)
    n = sum(c for _, _, c in header["streams"])
    arrays: dict[str, Any] = {}
    cursor = 0
    layout = [("delta", np.int64), ("value", np.int32 if header["int"] else np.float64), ("offset", np.int32),
              ("attr", np.uint16)] + ([("dur", np.int32)] if header["dur"] else [])
    for name, dtype in layout:
        arrays[name] = np.frombuffer(payload, dtype=dtype, count=n, offset=cursor)
        cursor += np.dtype(dtype).itemsize * n
    counts = np.array([c for _, _, c in header["streams"]], dtype=np.int64)
    totals = np.cumsum(arrays["delta"])
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    arrays["ts"] = totals - np.repeat(np.where(starts > 0, totals[starts - 1], 0), counts) if n else totals
    arrays["value"] = arrays["value"].astype(np.float64)
    arrays["offset"] = np.cumsum(arrays["offset"].astype(np.int64))
    arrays["dur"] = arrays.get("dur", np.full(n, -1, dtype=np.int32)).astype(np.int64)
    return header, arrays
