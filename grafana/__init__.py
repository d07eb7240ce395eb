"""Grafana dashboards as code: ``python -m grafana.build`` renders ``grafana/dashboards/*.json``."""

__all__: list[str] = []
