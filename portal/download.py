"""The participant's "Download my data" file: a zip of their own rows of every researcher table.

One CSV per table of ``sinks.tables.TABLES`` (a header even when they have no rows), the data
dictionary the researchers get (``docs/data_dictionary.md``, rendered from the same table
definitions) and a README in plain words. Rows are selected by ``person_id`` when read, so
no other participant's row is ever in memory for the zip, let alone in it.
"""

from __future__ import annotations

import io
import zipfile

from portal.my_data import person_rows
from sinks.dataset import Dataset
from sinks.dictionary import render
from sinks.tables import TABLES, Table

__all__ = ["DICTIONARY_NAME", "README_NAME", "csv_name", "download_zip", "readme"]

DICTIONARY_NAME = "data_dictionary.md"
README_NAME = "README.txt"

_README = """\
Your data from the wearables study
==================================

This zip holds every row the study has stored about you, exactly as the researchers see it,
as of the moment you downloaded it.

Files
-----
{files}
  {dictionary}: the data dictionary. For every column: its type, its unit, what it means,
      and which field of your device maker's data it comes from.
  {readme}: this file.

Things to know
--------------
- The CSV files open in any spreadsheet program. Each has a header row, even when the study
  holds no rows of that kind about you.
- person_id is your research ID: a code that stands for you in the study, instead of your
  name or your device account. Only you and the study team can connect it to you.
- The dates and times are your own true dates, in your local time, as your device reported
  them. They are not shifted.
- The tables other than daily_summary have the shapes of the All of Us Research Program's
  Fitbit tables (the same column names), so that studies can compare and combine them.
  daily_summary holds this study's own daily figures, worked out from your minute-by-minute data.
"""


def csv_name(table: Table) -> str:
    """The zip member of a table's CSV (``device.csv``)."""
    return f"{table.name}.csv"


def download_zip(dataset: Dataset, research_id: str) -> bytes:
    """The zip's bytes (deflate): the participant's rows of every table, the dictionary and the README."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in TABLES.values():
            rows = person_rows(dataset, table, research_id).sort(list(table.key))
            archive.writestr(csv_name(table), rows.write_csv())
        archive.writestr(DICTIONARY_NAME, render())
        archive.writestr(README_NAME, readme())
    return buffer.getvalue()


def readme() -> str:
    """The README text: one line per table file, from the table's own description."""
    files = "\n".join(f"  {csv_name(t)}: {t.description}" for t in TABLES.values())
    return _README.format(files=files, dictionary=DICTIONARY_NAME, readme=README_NAME)
