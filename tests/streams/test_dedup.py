from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from streams.daily.state import KEYED_SCHEMA
from streams.dedup import classify, deduplicate


def frame(rows: list[tuple[object, ...]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=KEYED_SCHEMA, orient="row")


def r(key: str, ts: int, value: float, label: str = "") -> tuple[object, ...]:
    return (key, "steps", label, ts, value, None, 0, "{}")


def test_duplicates_dropped_changes_replace_and_count() -> None:
    stored = frame([r("a", 60, 5), r("a", 120, 7)])
    arrivals = frame([r("a", 60, 5), r("a", 120, 8), r("a", 180, 1), r("a", 180, 1), r("b", 60, 2), r("a", 120, 7)])
    result = deduplicate(stored, arrivals)
    counts = {k: (n, d, v) for k, n, d, v in result.counts.sort("key").iter_rows()}
    assert counts == {"a": (1, 2, 2), "b": (1, 0, 0)}  # 120 went 7 -> 8 -> 7: two revisions, net unchanged
    assert sorted(result.changed.select("key", "ts", "value").iter_rows()) == [("a", 180, 1.0), ("b", 60, 2.0)]
    assert sorted(result.rows.select("key", "ts", "value").iter_rows()) == [
        ("a", 60, 5.0), ("a", 120, 7.0), ("a", 180, 1.0), ("b", 60, 2.0)]


def test_labels_are_part_of_the_identity() -> None:
    result = deduplicate(frame([]), frame([r("a", 60, 5, "light"), r("a", 60, 5, "deep")]))
    assert result.rows.height == 2


@given(st.dictionaries(st.integers(0, 500), st.integers(0, 200), max_size=40), st.randoms(), st.integers(1, 3))
def test_order_and_repetition_do_not_change_the_result(samples: dict[int, int], rng: object, copies: int) -> None:
    arrivals = [r("k", ts, float(v)) for ts, v in samples.items()] * copies
    rng.shuffle(arrivals)  # type: ignore[attr-defined]
    half = len(arrivals) // 2
    first = deduplicate(frame([]), frame(arrivals[:half]))
    second = deduplicate(first.rows, frame(arrivals[half:]))
    assert sorted(second.rows.select("ts", "value").iter_rows()) == sorted((t, float(v)) for t, v in samples.items())
    total_new = int(first.counts["new"].sum() or 0) + int(second.counts["new"].sum() or 0)
    assert total_new == len(samples)


@given(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 6), st.integers(0, 3)), max_size=12),
       st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 6), st.integers(0, 3)), max_size=30))
def test_the_hash_shortcut_agrees_with_classifying_every_row(stored: list[tuple[str, int, int]],
                                                            arrivals: list[tuple[str, int, int]]) -> None:
    before = frame(list({(k, t): r(k, t, float(v)) for k, t, v in stored}.values()))  # stored state is unique
    incoming = frame([r(k, t, float(v)) for k, t, v in arrivals])
    fast = deduplicate(before, incoming)
    full = classify(before, incoming.with_columns(seq=pl.int_range(pl.len())))
    assert fast.changed.rows() == full.changed.drop("seq").rows()  # same rows, same (arrival) order
    assert sorted(fast.rows.rows()) == sorted(full.rows.rows())
    def totals(counts: pl.DataFrame) -> list[tuple[object, ...]]:
        return sorted(counts.select("key", *(pl.col(c).cast(pl.Int64) for c in ("new", "duplicates", "revisions")))
                      .filter(pl.sum_horizontal("new", "duplicates", "revisions") > 0).rows())
    assert totals(fast.counts) == totals(full.counts)
