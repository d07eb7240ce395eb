"""The repository is self-contained: a clone has everything its docs, code and tests refer to.

Nothing tracked may point at files outside the repository (the design notes and data once kept
beside it, in a sibling folder), and no test may read a path above the repository root. The
contract is docs/architecture.md, the vendor facts docs/vendors.md, the test data tests/data/.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Spelled in pieces so that this file does not match itself: the sibling folder, the design
# file and the research notes that lived there.
_OUTSIDE = re.compile("|".join((r"\.\./" + "shared", "DESIGN" + r"\.md", r"\bresearch/[\w.-]+\." + "md")))
# Path(__file__).parents[N] / .parent chains: where a test climbs to.
_PARENTS = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")
_PARENT_CHAIN = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?((?:\.parent(?!s))+)")


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def _text(path: Path) -> str | None:
    """The file's text, or None for binary files and files deleted in the working tree."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def test_no_tracked_file_refers_outside_the_repository() -> None:
    hits = []
    for path in _tracked():
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if _OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not hits, "files that refer to notes outside the repository:\n" + "\n".join(hits)


def test_no_test_reads_a_path_above_the_repository() -> None:
    escapes = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        here = path.resolve()
        climbs = [int(m[1]) + 1 for m in _PARENTS.finditer(text)]
        climbs += [m[1].count(".parent") for m in _PARENT_CHAIN.finditer(text)]
        for levels in climbs:
            target = here.parents[levels - 1] if levels <= len(here.parents) else Path("/")
            if not target.is_relative_to(ROOT):
                escapes.append(f"{path.relative_to(ROOT)}: climbs {levels} levels to {target}")
    assert not escapes, "tests that read outside the repository:\n" + "\n".join(escapes)


def test_the_fitabase_data_the_tests_read_is_in_the_repository() -> None:
    folder = ROOT / "tests" / "data" / "fitabase"
    for name in ("minuteStepsWide_merged.csv", "dailySteps_merged.csv", "README.md"):
        assert (folder / name).is_file(), name
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme and "10.5281/zenodo.53894" in readme
