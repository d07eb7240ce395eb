"""A fetch request that hits a bug is counted and logged (without identifiers), not lost silently."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.scheduler import Scheduler
from models.fetch import FetchReason, FetchRequest
from models.providers import Provider
from runtime.settings import Settings


class _BrokenFetcher:
    async def fetch(self, research_id: str, request: FetchRequest) -> Any:
        raise RuntimeError(f"no such table for {research_id}")  # driver errors can quote parameters


async def test_a_fetch_that_raises_is_counted_as_error_and_logged_without_the_research_id(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scheduler = Scheduler(Settings.model_validate({"env": "demo", "data_dir": tmp_path}), "unused:9092",
                          vault=None)  # type: ignore[arg-type]
    request = FetchRequest(Provider.GOOGLE_HEALTH, "steps", "2026-11-01", "2026-11-02", FetchReason.POLL, time.time())
    with caplog.at_level(logging.ERROR, logger="connectors.scheduler"):
        await scheduler._one(_BrokenFetcher(), b"rid-secret-42", request.to_bytes())  # type: ignore[arg-type]
    assert scheduler.progress.outcomes == {"error": 1}
    assert "RuntimeError" in caplog.text and "rid-secret-42" not in caplog.text
