"""Cutting sample frames into batches (streams/normalize/batching.py): every row ends up once as
a sample or a reject, batches are cut by local date and offset in time order, rejects carry
their originals, and many pages in one call give what each page gives alone."""

from __future__ import annotations

import orjson
import polars as pl

from models.errors import Reason
from models.samples import Metric, Resolution, Unit
from streams.normalize.batching import BatchSpec, cut_batches, cut_page, originals_of
from tests.builders import fitbit_page

PAGE = fitbit_page("activities-steps-intraday", b"{}")


def _spec(research_id: str = "R1") -> BatchSpec:
    return BatchSpec(research_id, Metric.STEPS, Unit.STEPS, Resolution.MINUTE, PAGE, {"k": "v"})


def _frame(rows: list[tuple[int | None, int, str, float | None]], page: int | None = None) -> pl.DataFrame:
    frame = pl.DataFrame({"idx": range(len(rows)), "ts": [r[0] for r in rows], "offset": [r[1] for r in rows],
                          "local_date": [r[2] for r in rows], "value": [r[3] for r in rows]},
                         schema={"idx": pl.Int64, "ts": pl.Int64, "offset": pl.Int64, "local_date": pl.String,
                                 "value": pl.Float64})
    return frame if page is None else frame.with_columns(page=pl.lit(page, dtype=pl.Int64))


ROWS = [(1200, -18000, "2026-01-01", 5.0), (60, -18000, "2026-01-01", 1.0), (7200, -14400, "2026-01-01", 2.0),
        (90000, -18000, "2026-01-02", -3.0), (None, 0, "2026-01-02", 4.0), (3600, -18000, "2026-01-01", None)]
ENTRIES = [{"n": i} for i in range(len(ROWS))]


def test_rows_are_cut_by_date_and_offset_in_time_order() -> None:
    result = cut_page(_frame(ROWS), _spec(), original=originals_of(ENTRIES))
    assert [(b.local_date, b.utc_offset_s, b.timestamps, b.values) for b in result.batches] == [
        ("2026-01-01", -18000, [60, 1200], [1.0, 5.0]), ("2026-01-01", -14400, [7200], [2.0]),
        ("2026-01-02", -18000, [], [])]  # a date with rejects only: an empty batch carries them
    assert result.batches[2].rejected_timestamps == [90000]
    assert result.batches[0].rejected_timestamps == [3600] and result.batches[0].attributes == {"k": "v"}
    assert (result.input_samples, result.samples, result.rejected) == (6, 3, 3)


def test_rejects_carry_their_reason_and_original_entries() -> None:
    result = cut_page(_frame(ROWS), _spec(), original=originals_of(ENTRIES))
    got = {(r.reason, r.count): orjson.loads(r.original) for r in result.rejects}
    assert got == {(Reason.NEGATIVE_STEPS, 1): [{"n": 3}], (Reason.BAD_TIME, 1): [{"n": 4}],
                   (Reason.NOT_A_NUMBER, 1): [{"n": 5}]}
    assert all("steps sample(s) rejected" in r.detail for r in result.rejects)


def test_many_pages_in_one_call_equal_each_page_alone() -> None:
    other = [(30, 3600, "2026-01-01", 7.0), (40, 3600, "2026-01-01", 2000.0)]
    together = cut_batches(pl.concat([_frame(ROWS, 0), _frame(other, 1)], how="diagonal"),
                           [_spec("R1"), _spec("R2")], [originals_of(ENTRIES), originals_of(["a", "b"])])
    alone = [cut_page(_frame(ROWS), _spec("R1"), original=originals_of(ENTRIES)),
             cut_page(_frame(other), _spec("R2"), original=originals_of(["a", "b"]))]
    assert together == alone


def test_an_empty_frame_gives_empty_results() -> None:
    result = cut_page(_frame([]), _spec(), original=originals_of([]))
    assert (result.batches, result.rejects, result.input_samples) == ([], [], 0)
