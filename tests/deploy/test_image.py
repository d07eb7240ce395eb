"""The image and the compose file, checked by reading them (there is no Docker here): the image
carries every package the command imports, runs as a non-root user that owns its state directory,
and nothing is published beyond the host or viewable anonymously (security audit finding 23)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())


def _packages() -> set[str]:
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return {pattern.rstrip("*") for pattern in found["include"]}


def test_the_image_copies_every_package_and_the_docs() -> None:
    copied = set(re.findall(r"^COPY (\S+) \./\1$", DOCKERFILE, flags=re.MULTILINE))
    assert _packages() <= copied, f"missing in deploy/Dockerfile: {sorted(_packages() - copied)}"
    assert "docs" in copied  # `wearables dictionary --check` reads docs/data_dictionary.md


def test_the_image_runs_as_a_non_root_user_owning_its_state_directory() -> None:
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert "chown wearables:wearables /var/lib/wearables" in DOCKERFILE
    assert DOCKERFILE.index("chown") < DOCKERFILE.index("VOLUME")  # a fresh volume inherits the owner


def test_published_ports_bind_to_the_host_only() -> None:
    published = [(name, port) for name, service in COMPOSE["services"].items()
                 for port in service.get("ports", [])]
    assert published  # Prometheus and Grafana are published
    assert all(str(port).startswith("127.0.0.1:") for _, port in published), published


def test_grafana_has_no_anonymous_viewers_and_its_password_comes_from_a_file() -> None:
    environment = COMPOSE["services"]["grafana"]["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert environment["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith("/run/secrets/")
    assert "GF_SECURITY_ADMIN_PASSWORD" not in environment
