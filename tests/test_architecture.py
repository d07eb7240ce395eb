"""Boundaries as tests: import direction (import-linter), lint (ruff), strict types (mypy), public surfaces."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["models", "runtime", "connectors", "streams", "sinks", "portal", "cli", "grafana"]


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `./run setup` (it installs the dev extra)")
    return path


def test_import_contracts_hold() -> None:
    result = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_ruff_is_clean() -> None:
    result = subprocess.run([_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_types_check_in_strict_mode() -> None:
    """mypy --strict over every package ([tool.mypy] in pyproject.toml): zero errors."""
    result = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr
    assert "Success: no issues found" in result.stdout


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        module = importlib.import_module(package)
        names += [m.name for m in pkgutil.walk_packages(module.__path__, prefix=f"{package}.")]
    return names


@pytest.mark.parametrize("name", _modules())
def test_every_module_declares_an_accurate_all(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [item for item in exported if not hasattr(module, item)]
    assert missing == []


# Modules without a test module at the mirrored path, each with the reason. Keep it short: a
# module belongs here only when a mirrored test would repeat what the named test already proves.
UNMIRRORED: dict[str, str] = {
    "cli/bench_baseline.py": "the bench's per-sample baseline workers; run as child processes (baseline_ratio) by "
                             "tests/cli/test_bench.py::test_bench_pipeline_writes_its_figures",
    "cli/bench_connector.py": "a benchmark; run end to end by "
                              "tests/cli/test_bench.py::test_bench_connector_writes_its_figures",
    "cli/demo.py": "composition of the services; run end to end by "
                   "tests/cli/test_main.py::test_demo_links_the_cohort_and_summarizes_every_day",
}


def _mirror(module: Path) -> Path:
    return ROOT / "tests" / module.parent / f"test_{module.name}"


def _code_modules() -> list[Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name != "__init__.py" and "__pycache__" not in path.parts:
                files.append(path.relative_to(ROOT))
    return files


def test_every_module_has_a_mirrored_test_module_or_a_stated_reason() -> None:
    """``pkg/sub/mod.py`` is tested by ``tests/pkg/sub/test_mod.py``, or listed in UNMIRRORED."""
    missing = []
    for module in _code_modules():
        if not _mirror(module).is_file() and module.as_posix() not in UNMIRRORED:
            missing.append(f"{module} (expected {_mirror(module).relative_to(ROOT)})")
    assert missing == [], "modules with neither a test module nor a reason in UNMIRRORED:\n" + "\n".join(missing)


def test_the_allow_list_names_only_modules_that_exist_and_lack_a_test() -> None:
    stale = [name for name in UNMIRRORED if not (ROOT / name).is_file() or _mirror(Path(name)).is_file()]
    assert stale == []
