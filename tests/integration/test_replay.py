"""wearables replay on an archive built from the Fitabase minute steps (Furberg et al. 2016,
Zenodo 10.5281/zenodo.53894, CC BY 4.0): daily_summary.steps equals the minute sums of every
participant-day, and a second replay changes no file."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from cli.replay import run_replay
from models.ids import research_id
from runtime.settings import Settings
from tests.builders import fitbit_intraday_body


def _archive(root: Path, minutes: Any) -> Path:
    base = root / "FITBIT"
    by_day = minutes.with_columns(day=pl.col("local").dt.date(), time=pl.col("local").dt.strftime("%H:%M:%S"))
    for (person, day), rows in by_day.group_by(["id", "day"], maintain_order=True):
        folder = base / "activities-steps-intraday" / f"P{person}"
        folder.mkdir(parents=True, exist_ok=True)
        body = fitbit_intraday_body("steps", day, rows.select("time", value="steps").to_dicts())
        (folder / f"activities_steps_date_{day}_1d_1min.json").write_bytes(body)
        profile = base / "profile" / f"P{person}" / "profile.json"
        if not profile.exists():
            profile.parent.mkdir(parents=True, exist_ok=True)
            profile.write_text('{"user": {"timezone": "UTC", "offsetFromUTCMillis": 0}}')
    return root


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


async def test_replay_of_fitabase_gives_exact_daily_steps(settings_factory: Callable[..., Settings],
                                                          fitabase_minutes: Any, tmp_path: Path) -> None:
    settings = settings_factory(sink_flush_interval=1.0)
    archive = _archive(tmp_path / "archive", fitabase_minutes)
    out = tmp_path / "dataset"
    report = await run_replay(settings, archive, out, timeout=300)

    secret = settings.require_secret_key()
    expected = (fitabase_minutes.group_by("id", day=pl.col("local").dt.date()).agg(pl.col("steps").sum())
                .select(person_id=pl.col("id").map_elements(lambda i: research_id(secret, f"P{i}"),
                                                            return_dtype=pl.String), date="day", steps="steps"))
    daily = pl.scan_parquet(f"{out}/daily_summary/**/*.parquet", hive_partitioning=True).select(
        "person_id", "date", "steps").collect()
    assert daily.height == expected.height == report.days
    joined = expected.join(daily, on=["person_id", "date"], how="left", suffix="_written")
    assert joined.filter(pl.col("steps") != pl.col("steps_written")).height == 0
    assert joined["steps_written"].null_count() == 0
    assert report.participants == fitabase_minutes["id"].n_unique() == 33
    assert report.samples == fitabase_minutes.height

    _run_readme_snippet(out, expected)

    before = _files(out)
    again = await run_replay(settings, archive, out, timeout=300)
    assert _files(out) == before
    assert again.days == report.days


def _run_readme_snippet(out: Path, expected: pl.DataFrame) -> None:
    """The README's "read the dataset" snippet, run in a fresh Python process against this dataset."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- readme-snippet: read-dataset -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert 'dataset = "var/dataset"' in block
    code = block.replace('dataset = "var/dataset"', f"dataset = {str(out)!r}")
    code += "\nprint('ROWS', days.height)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    valid = pl.scan_parquet(f"{out}/daily_summary/**/*.parquet", hive_partitioning=True).filter(
        pl.col("date").is_between(date(2016, 4, 12), date(2016, 4, 18)) & pl.col("valid_day")).collect()
    assert valid.height > 0 and f"ROWS {valid.height}" in result.stdout
