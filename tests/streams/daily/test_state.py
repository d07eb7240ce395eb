from __future__ import annotations

from datetime import date

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.simulator.cohort import SyntheticCohort
from streams.daily.process import rows_of
from streams.daily.state import KEYED_SCHEMA, DayMeta, pack_states, sorted_streams, unpack_states
from tests.streams.daily.helpers import batches_of, cohort_pages

row = st.tuples(st.sampled_from(["a|2026-01-01", "b|2026-01-02"]),
                st.sampled_from(["steps", "heart_rate", "sleep_stage"]),
                st.sampled_from(["", "light", "deep"]), st.integers(1_700_000_000, 1_800_000_000),
                st.one_of(st.integers(0, 300).map(float), st.floats(-1e6, 1e6, allow_nan=False)),
                st.one_of(st.none(), st.integers(0, 10_000)), st.sampled_from([-18000, 0, 19800]),
                st.sampled_from(["{}", '{"is_main_sleep":true}']))


@given(st.lists(row, max_size=60, unique_by=lambda r: (r[0], r[1], r[2], r[3])))
@settings(max_examples=60)
def test_pack_unpack_round_trips_exactly(rows: list[tuple[object, ...]]) -> None:
    frame = pl.DataFrame(rows, schema=KEYED_SCHEMA, orient="row")
    metas = {key: DayMeta(revision=3, final=True, duplicates=2, rejected=[5, 9])
             for key in ("a|2026-01-01", "b|2026-01-02")}
    back, back_metas = unpack_states(pack_states(frame, metas))
    order = ["key", "metric", "label", "ts"]
    assert back.sort(order).equals(frame.sort(order))
    assert back_metas == metas


def test_minute_level_day_is_under_4_kb() -> None:
    cohort = SyntheticCohort(20, seed=8)
    rows = rows_of(batches_of(cohort_pages(cohort, [date(2026, 5, 5)])))
    blobs = pack_states(rows, {key: DayMeta() for key in rows["key"].unique().to_list()})
    sizes = [len(b) for b in blobs.values()]
    assert len(sizes) == 20
    assert max(sizes) <= 4096, sizes


@given(st.lists(st.tuples(st.sampled_from(["a|d1", "b|d1", "a|d2"]), st.sampled_from(["steps", "heart_rate"]),
                          st.sampled_from(["", "deep"]), st.integers(0, 50)), max_size=60, unique=True),
       st.booleans())
def test_ordering_runs_equals_sorting_rows(identities: list[tuple[str, str, str, int]], grouped: bool) -> None:
    rows = [(k, m, lab, ts, float(ts), None, 0, "{}") for k, m, lab, ts in identities]
    if grouped:  # the usual shape: each stream one run in time order
        rows.sort(key=lambda r: (r[1], r[0], r[2], r[3]))
    frame = pl.DataFrame(rows, schema=KEYED_SCHEMA, orient="row")
    assert sorted_streams(frame).equals(frame.sort("key", "metric", "label", "ts"))
