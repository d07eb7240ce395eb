"""The normalize agent's declaration (streams/agents/normalize.py): what it reads and writes.

Its body is the pure stage (tests/streams/normalize/test_stage.py); the agent on a real broker,
pages in and samples and dead letters out, is tests/integration/test_normalize_agent.py.
"""

from __future__ import annotations

import faust

from runtime.purges import PurgeList
from runtime.settings import Settings
from streams.agents.normalize import register_normalize
from streams.progress import Progress


def test_one_agent_reads_every_raw_topic() -> None:
    settings = Settings.model_validate({"env": "demo", "topic_prefix": "tx.", "kafka_bootstrap_servers": "localhost:1",
                                        "store": "memory://"})
    app = faust.App("test-normalize", broker="kafka://localhost:1", store="memory://", autodiscover=False)
    register_normalize(app, settings, Progress(), PurgeList(b"k"))
    agent = app.agents["normalize"]
    assert set(agent.channel.topics) == {"tx.raw.fitbit", "tx.raw.google_health"}
    assert agent.concurrency == 1  # one instance: one shared vectorised pass at a time
