"""docs/data_dictionary.md is what `wearables dictionary` renders from the table definitions."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from sinks.dictionary import DICTIONARY_PATH, render
from sinks.tables import STAGING, TABLES

REPO = Path(__file__).resolve().parents[2]
CHECKED_IN = REPO / DICTIONARY_PATH


def _column_rows(text: str, table: str) -> dict[str, list[str]]:
    """{column: [type, unit, meaning, provenance]} from the Markdown table under ``## table``."""
    section = text.split(f"# {table}\n", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"^\| `(\w+)` \| (.+) \|$", line)
        if match:
            rows[match[1]] = [cell.strip() for cell in re.split(r"(?<!\\)\|", match[2])]
    return rows


def test_checked_in_dictionary_is_the_rendered_one() -> None:
    assert CHECKED_IN.read_text(encoding="utf-8") == render(), (
        f"run `./run wearables dictionary --out {DICTIONARY_PATH}` and commit it")


def test_every_column_is_documented_with_type_unit_meaning_and_provenance() -> None:
    text = CHECKED_IN.read_text(encoding="utf-8")
    for table in (*TABLES.values(), *STAGING):
        rows = _column_rows(text, table.name)
        assert list(rows) == [c.name for c in table.columns], table.name
        for column in table.columns:
            kind, unit, meaning, provenance = rows[column.name]
            assert kind in {"INTEGER", "FLOAT", "STRING", "DATE", "DATETIME", "BOOLEAN", "TIMESTAMP (UTC)"}
            assert meaning and meaning != "—" and provenance and provenance != "—", column.name
            assert unit == (column.unit or "—")
    # Spot checks against the All of Us types, typed out here rather than derived.
    assert _column_rows(text, "steps_intraday")["steps"][0] == "FLOAT"  # NUMERIC in All of Us
    assert _column_rows(text, "heart_rate_minute_level")["datetime"][0] == "DATETIME"
    assert _column_rows(text, "daily_summary")["first_sample_at"][0] == "TIMESTAMP (UTC)"
    assert _column_rows(text, "activity_summary")["calories_out"][1] == "kcal"
    device = _column_rows(text, "device")
    assert (device["last_sync_time"][0], device["device_date"][0]) == ("DATETIME", "DATE")
    assert device["battery_level"][:2] == ["INTEGER", "%"]  # a documented difference from All of Us (a string)


def test_valid_day_rule_states_the_configured_defaults() -> None:
    text = CHECKED_IN.read_text(encoding="utf-8")
    assert "at least 10 local clock hours with steps > 0 and 100 <= steps <= 45,000" in text
    assert _column_rows(text, "daily_summary")["valid_day"][2].startswith("a day is valid when")


def test_cli_writes_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "dictionary.md"
    written = CliRunner().invoke(main, ["dictionary", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_text(encoding="utf-8") == render()

    assert CliRunner().invoke(main, ["dictionary", "--check", str(out)]).exit_code == 0
    out.write_text(render().replace("| kcal |", "| cal |", 1), encoding="utf-8")
    stale = CliRunner().invoke(main, ["dictionary", "--check", str(out)])
    assert stale.exit_code == 1
    assert "wearables dictionary --out docs/data_dictionary.md" in stale.output

    printed = CliRunner().invoke(main, ["dictionary"])
    assert printed.exit_code == 0 and printed.output == render()
