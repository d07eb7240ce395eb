"""deploy/requirements.lock, the image's pinned and hashed dependencies, is what pyproject.toml asks
for: its header records the sha256 of pyproject's requirement lines ([project.dependencies] and
[build-system].requires), every pin has hashes, and every requirement is met by a pin. A change of
pyproject's dependencies without `./run lock` fails here, saying so."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "deploy" / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
REGENERATE = "run `./run lock` and commit deploy/requirements.lock"
_HEADER = re.compile(r"^# pyproject-dependencies-sha256: ([0-9a-f]{64})$", flags=re.MULTILINE)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$", flags=re.MULTILINE)


def requirement_lines(pyproject: str) -> list[str]:
    """What the lock is made from, in order: the runtime dependencies, then the build backend."""
    project = tomllib.loads(pyproject)
    return [*project["project"]["dependencies"], *project["build-system"]["requires"]]


def dependencies_sha256(pyproject: str) -> str:
    """The sha256 `./run lock` writes into the lock's header (one requirement per line)."""
    return hashlib.sha256("".join(f"{line}\n" for line in requirement_lines(pyproject)).encode()).hexdigest()


def pins(lock: str) -> dict[str, Version]:
    return {canonicalize_name(name): Version(version) for name, version in _PIN.findall(lock)}


def lock_problem(pyproject: str, lock: str) -> str | None:
    """Why ``lock`` is not the lock of ``pyproject``, or None."""
    recorded = _HEADER.search(lock)
    if recorded is None:
        return f"deploy/requirements.lock has no '# pyproject-dependencies-sha256: ...' header: {REGENERATE}"
    if recorded[1] != dependencies_sha256(pyproject):
        return f"pyproject.toml's dependencies changed since deploy/requirements.lock was made: {REGENERATE}"
    pinned = pins(lock)
    for line in requirement_lines(pyproject):
        requirement = Requirement(line)
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            return f"deploy/requirements.lock does not satisfy {line!r} (pinned: {version}): {REGENERATE}"
    return None


def test_the_lock_is_made_from_the_current_pyproject_dependencies() -> None:
    problem = lock_problem(PYPROJECT.read_text(encoding="utf-8"), LOCK.read_text(encoding="utf-8"))
    assert problem is None, problem


def entries(lock: str) -> list[str]:
    """The lock's requirements, each with its indented continuation lines (hashes, annotations)."""
    found: list[list[str]] = []
    for line in lock.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            found.append([line])
        elif found and line[:1].isspace():
            found[-1].append(line)
    return ["\n".join(entry) for entry in found]


def test_every_pin_is_exact_and_hashed() -> None:
    lock = LOCK.read_text(encoding="utf-8")
    requirements = entries(lock)
    assert len(requirements) == len(pins(lock)) > 30, "every requirement is one `name==version \\` pin"
    unhashed = [entry.split()[0] for entry in requirements if "--hash=sha256:" not in entry]
    assert not unhashed, f"pins without hashes: {unhashed}"


def _added(dependencies: list[str]) -> list[str]:
    return [*dependencies, "requests>=2.32,<3"]


def _removed(dependencies: list[str]) -> list[str]:
    return dependencies[1:]


def _range_changed(dependencies: list[str]) -> list[str]:
    return [dependencies[0] + ",!=0.15.99", *dependencies[1:]]


@pytest.mark.parametrize("change", [_added, _removed, _range_changed], ids=["added", "removed", "range-changed"])
def test_a_dependency_change_without_a_new_lock_fails_and_says_how_to_fix_it(
        change: Callable[[list[str]], list[str]]) -> None:
    pyproject = PYPROJECT.read_text(encoding="utf-8")
    dependencies = tomllib.loads(pyproject)["project"]["dependencies"]
    changed = change(list(dependencies))
    block = re.search(r"^dependencies = \[\n.*?^\]\n", pyproject, flags=re.MULTILINE | re.DOTALL)
    assert block is not None
    edited = pyproject.replace(block[0], "dependencies = [\n" + "".join(f'    "{d}",\n' for d in changed) + "]\n")
    assert tomllib.loads(edited)["project"]["dependencies"] == changed != dependencies
    problem = lock_problem(edited, LOCK.read_text(encoding="utf-8"))
    assert problem is not None and "./run lock" in problem, problem
