"""The edge: vendor APIs and participants in, records onto topics out.

Imports ``models`` and ``runtime`` only; never ``streams`` (they meet on topics)."""

__all__: list[str] = []
