"""The image and the compose file, checked by reading them (there is no Docker here): the image
is built in two stages from the lock, carries every package the command imports, runs as a
non-root user that owns its state directory, probes itself with the stdlib, and nothing is
published beyond the host or viewable anonymously (security audit finding 23). The validators
(hadolint, the compose schema, Kubernetes' schemas) are tests/deploy/test_manifests.py."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())


def _stages() -> list[str]:
    """The Dockerfile's build stages, each from its FROM line to the next."""
    parts = re.split(r"^(?=FROM )", DOCKERFILE, flags=re.MULTILINE)
    return [part for part in parts if part.startswith("FROM ")]


def _packages() -> set[str]:
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return {pattern.rstrip("*") for pattern in found["include"]}


def _copied(stage: str) -> set[str]:
    return set(re.findall(r"^COPY (\S+) \./\1$", stage, flags=re.MULTILINE))


def test_the_image_builds_in_a_builder_stage_and_runs_in_a_slim_one() -> None:
    builder, runtime = _stages()
    assert re.match(r"FROM python:3\.11-slim AS builder\n", builder)
    assert re.match(r"FROM python:3\.11-slim\n", runtime)
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime  # only the environment crosses over


def test_dependencies_come_from_the_lock_with_hashes_and_the_project_without_any() -> None:
    builder, runtime = _stages()
    assert "COPY deploy/requirements.lock ./deploy/requirements.lock" in builder
    assert "pip install --no-cache-dir --require-hashes --no-deps -r deploy/requirements.lock" in builder
    assert "pip install --no-cache-dir --no-deps --no-build-isolation ." in builder  # nothing unpinned
    assert builder.index("requirements.lock") < builder.index("COPY models")  # deps: their own layer
    assert "pip install" not in runtime


def test_the_image_copies_every_package_and_the_docs() -> None:
    builder, runtime = _stages()
    assert _packages() <= _copied(builder), f"missing in deploy/Dockerfile: {sorted(_packages() - _copied(builder))}"
    assert "docs" in _copied(runtime)  # `wearables dictionary --check` reads docs/data_dictionary.md
    assert re.search(r"^WORKDIR /app$", runtime, flags=re.MULTILINE)


def test_the_image_runs_as_a_non_root_user_owning_its_state_directory() -> None:
    runtime = _stages()[-1]
    users = re.findall(r"^USER (\S+)$", runtime, flags=re.MULTILINE)
    assert users == ["10001"]
    assert re.search(r"useradd .*--uid 10001 .*wearables", runtime.replace("\\\n", " "))
    assert "chown wearables:wearables /var/lib/wearables" in runtime
    assert runtime.index("chown") < runtime.index("VOLUME")  # a fresh volume inherits the owner


def test_the_entrypoint_is_wearables_and_the_healthcheck_uses_the_stdlib_on_the_metrics_port() -> None:
    runtime = _stages()[-1]
    assert re.search(r'^ENTRYPOINT \["wearables"\]$', runtime, flags=re.MULTILINE)
    healthcheck = re.search(r"^HEALTHCHECK (.*?)(?<!\\)$", runtime, flags=re.MULTILINE | re.DOTALL)
    assert healthcheck is not None
    check = healthcheck[1]
    assert 'CMD ["python", "-c",' in check and "urllib.request.urlopen(" in check
    assert "os.environ.get('WEARABLES_METRICS_PORT', '9466')" in check and "/healthz" in check
    assert "curl" not in check and "wget" not in check  # neither is in python:3.11-slim


def test_published_ports_bind_to_the_host_only() -> None:
    published = [(name, port) for name, service in COMPOSE["services"].items()
                 for port in service.get("ports", [])]
    assert published  # the gateway, the portal, Prometheus and Grafana are published
    assert all(str(port).startswith("127.0.0.1:") for _, port in published), published


def test_grafana_has_no_anonymous_viewers_and_its_password_comes_from_a_file() -> None:
    environment = COMPOSE["services"]["grafana"]["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert environment["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith("/run/secrets/")
    assert "GF_SECURITY_ADMIN_PASSWORD" not in environment
