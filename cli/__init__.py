"""The composition root: builds Settings from the environment and wires the processes.

The only package allowed to import both ``connectors`` and ``streams``."""

__all__: list[str] = []
