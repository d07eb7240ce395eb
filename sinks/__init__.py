"""Sinks: topics → researcher outputs (the Parquet dataset in All of Us table shapes)."""

__all__: list[str] = []
