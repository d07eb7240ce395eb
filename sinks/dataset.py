"""A Parquet dataset on a path or an object store: one directory per table, one file per date.

Layout: ``<root>/<table>/date=YYYY-MM-DD/data.parquet`` (Hive-style, so
``pl.scan_parquet(root + "/steps_intraday/**/*.parquet", hive_partitioning=True)`` reads a
table and filters by date without opening other files).

Upsert: a partition's new rows replace the rows with the same key, and the whole partition is
written again as one file, so a table never accumulates small files (compaction is the write
itself) and a key is never in two files. A reader never sees a half-written file: on a local
path the file is written beside its final name and renamed over it (atomic on POSIX); on an
object store a PUT is atomic by itself. Rows are sorted by key, so the same rows give the same
file bytes (re-running changes nothing).
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterable
from datetime import date

import fsspec
import polars as pl
from fsspec.implementations.local import LocalFileSystem

from sinks.tables import Table

__all__ = ["PARTITION", "Dataset"]

PARTITION = "date"  # the Hive partition column name of every table's directories
_FILE = "data.parquet"


class Dataset:
    """Partitioned Parquet tables under ``location`` (a path, ``file://``, ``s3://``, ``memory://`` ...)."""

    def __init__(self, location: str, **storage_options: object) -> None:
        self.fs, root = fsspec.core.url_to_fs(location, **storage_options)
        self.root = root.rstrip("/")
        self.location = location
        self._local = isinstance(self.fs, LocalFileSystem)

    def path(self, table: str, day: date | None = None) -> str:
        base = f"{self.root}/{table}"
        return base if day is None else f"{base}/{PARTITION}={day.isoformat()}/{_FILE}"

    def dates(self, table: str) -> list[date]:
        """The partitions (dates) of a table, in order."""
        base = self.path(table)
        if not self.fs.exists(base):
            return []
        found = []
        for entry in self.fs.ls(base, detail=False):
            name = str(entry).rstrip("/").rpartition("/")[2]
            if name.startswith(f"{PARTITION}=") and self.fs.exists(f"{entry}/{_FILE}"):
                found.append(date.fromisoformat(name.partition("=")[2]))
        return sorted(found)

    def read(self, table: Table, day: date) -> pl.DataFrame:
        """One partition (empty, with the table's schema, if it does not exist)."""
        path = self.path(table.name, day)
        if not self.fs.exists(path):
            return table.empty()
        with self.fs.open(path, "rb") as handle:
            return table.conform(pl.read_parquet(handle))

    def read_all(self, table: Table, days: Iterable[date] | None = None) -> pl.DataFrame:
        chosen = self.dates(table.name) if days is None else list(days)
        frames = [self.read(table, d) for d in chosen]
        return pl.concat(frames) if frames else table.empty()

    def upsert(self, table: Table, rows: pl.DataFrame) -> dict[date, int]:
        """Merge ``rows`` (the table's columns) into their partitions; the newest row of a key wins.

        Returns the row count of each partition written.
        """
        rows = table.conform(rows)
        if rows.is_empty():
            return {}
        written = {}
        for (day,), part in rows.with_columns(_partition_expr(table)).group_by("__day", maintain_order=True):
            merged = pl.concat([self.read(table, day), part.drop("__day")])
            merged = merged.unique(subset=list(table.key), keep="last", maintain_order=True).sort(table.key)
            self.write(table, day, merged)
            written[day] = merged.height
        return written

    def remove(self, table: Table, rows: pl.DataFrame) -> dict[date, int]:
        """Remove the rows with the keys of ``rows`` (the vendor withdrew them) from their partitions.

        Returns the rows removed from each partition rewritten; a partition that held none of
        them is not rewritten.
        """
        rows = table.conform(rows)
        removed = {}
        for (day,), part in rows.with_columns(_partition_expr(table)).group_by("__day", maintain_order=True):
            current = self.read(table, day)
            kept = current.join(part.select(table.key), on=list(table.key), how="anti", nulls_equal=True)
            if kept.height < current.height:
                self.replace(table, day, kept)
                removed[day] = current.height - kept.height
        return removed

    def remove_person(self, table: Table, person_id: str) -> dict[date, int]:
        """Remove every row of ``person_id`` (a purge): the rows removed per partition rewritten.

        Only the ``person_id`` column of each partition is read first, so partitions without the
        participant cost a column read and are not rewritten.
        """
        removed = {}
        for day in self.dates(table.name):
            with self.fs.open(self.path(table.name, day), "rb") as handle:
                people = pl.read_parquet(handle, columns=["person_id"])["person_id"]
            if not (people == person_id).any():
                continue
            current = self.read(table, day)
            kept = current.filter(pl.col("person_id") != person_id)
            self.replace(table, day, kept)
            removed[day] = current.height - kept.height
        return removed

    def replace(self, table: Table, day: date, rows: pl.DataFrame) -> None:
        """Make a partition hold exactly ``rows`` (derived tables recomputed for a date)."""
        rows = table.conform(rows).unique(subset=list(table.key), keep="last", maintain_order=True).sort(table.key)
        if rows.is_empty():
            self.delete(table, day)
        else:
            self.write(table, day, rows)

    def delete(self, table: Table, day: date) -> None:
        path = self.path(table.name, day)
        if self.fs.exists(path):
            self.fs.rm(path)

    def write(self, table: Table, day: date, rows: pl.DataFrame) -> None:
        path = self.path(table.name, day)
        self.fs.makedirs(path.rpartition("/")[0], exist_ok=True)
        buffer = io.BytesIO()
        table.conform(rows).write_parquet(buffer, compression="zstd", statistics=True)
        if self._local:  # a sibling whose name no *.parquet glob matches, then an atomic rename
            temporary = f"{path}.{uuid.uuid4().hex}.tmp"
            with open(temporary, "wb") as handle:
                handle.write(buffer.getvalue())
            os.replace(temporary, path)
        else:
            self.fs.pipe_file(path, buffer.getvalue())


def _partition_expr(table: Table) -> pl.Expr:
    column = pl.col(table.partition_by)
    dtype = table.schema[table.partition_by]
    return (column.dt.date() if isinstance(dtype, pl.Datetime) else column).alias("__day")
