"""Faust stream processing: reads topics, owns state, writes derived topics and outputs.

Imports ``models`` and ``runtime`` only; never ``connectors`` (they meet on topics)."""

from streams.app import Pipeline, build_pipeline, internal_topic_plan
from streams.progress import Progress
from streams.runner import WorkerService

__all__ = ["Pipeline", "Progress", "WorkerService", "build_pipeline", "internal_topic_plan"]
