"""Per-participant local days: deduplicated state, summaries, finalization (pure; no Faust)."""

__all__: list[str] = []
