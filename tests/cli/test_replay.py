"""`wearables replay` refuses an archive without one usable file before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.importer import NothingToImport
from cli.replay import run_replay
from runtime.settings import Settings


async def test_an_archive_of_nothing_but_unsafe_files_is_refused_before_the_worker_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "archive" / "FITBIT" / "steps" / "P1234567890"
    folder.mkdir(parents=True)
    outside = tmp_path / "service.env"
    outside.write_text("WEARABLES_VAULT_KEY=secret")
    (folder / "activities_steps_date_2021-11-11_1d_1min.json").symlink_to(outside)
    def no_broker(*_: object, **__: object) -> None:
        raise AssertionError("a broker was started for an archive with nothing to replay")

    monkeypatch.setattr("cli.replay.kafka_session", no_broker)
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path / "data",
                                        "default_timezone": "America/Chicago"})
    with pytest.raises(NothingToImport) as refused:
        await run_replay(settings, tmp_path / "archive", tmp_path / "out", timeout=5)
    assert "symlink" in str(refused.value) and "P1234567890" not in str(refused.value)
