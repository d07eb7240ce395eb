"""No blanket type ignores: every ``# type: ignore`` in the packages names its error code and says why.

A narrow ``# type: ignore[code]`` belongs only at a third-party seam (a library's stubs are wrong
or missing a member), with the reason on the same line after it::

    stream.take_events(500)  # type: ignore[attr-defined]  # faust's StreamT lacks take_events
"""

from __future__ import annotations

import io
import re
import tokenize
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["models", "runtime", "connectors", "streams", "sinks", "portal", "cli", "grafana"]

# mypy's own grammar: "type:" and "ignore" may be spaced; codes are a bracketed, comma-separated list
_IGNORE = re.compile(r"#\s*type:\s*ignore(?![\w-])(?P<codes>\[[^\]]*\])?(?P<rest>.*)")
_CODES = re.compile(r"\[\s*[a-z][a-z0-9-]*(\s*,\s*[a-z][a-z0-9-]*)*\s*\]")
_REASON = re.compile(r"\s*#\s*\S")


def problem_of(comment: str) -> str | None:
    """What is wrong with the type ignore in ``comment`` (a source comment), or None if it is fine."""
    found = _IGNORE.search(comment)
    if found is None:
        return None
    codes, rest = found["codes"], found["rest"]
    if codes is None or not _CODES.fullmatch(codes):
        return "no [code]: a blanket ignore"
    if not _REASON.match(rest):
        return "no reason: add `# why` after the ignore"
    return None


def _offenders() -> list[str]:
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            if "ignore" not in source:
                continue
            for token in tokenize.generate_tokens(io.StringIO(source).readline):
                if token.type == tokenize.COMMENT and (problem := problem_of(token.string)):
                    offenders.append(f"{path.relative_to(ROOT)}:{token.start[0]}: {problem}: {token.string}")
    return offenders


def test_every_type_ignore_is_narrow_and_explained() -> None:
    offenders = _offenders()
    assert not offenders, "type ignores without [code] or reason:\n" + "\n".join(offenders)


def test_the_packages_are_the_ones_mypy_checks() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert sorted(config["tool"]["mypy"]["packages"]) == sorted(PACKAGES)


@pytest.mark.parametrize(("comment", "problem"), [
    ("# type: ignore[attr-defined]  # faust's StreamT lacks take_events", None),
    ("# type: ignore[no-any-return, misc] # two codes, one reason", None),
    ("# noqa: SLF001 - not a type ignore", None),
    ("# type: ignore", "no [code]: a blanket ignore"),
    ("#type:ignore  # a reason is not enough", "no [code]: a blanket ignore"),
    ("# type: ignore[]  # empty codes", "no [code]: a blanket ignore"),
    ("# type: ignore[union-attr]", "no reason: add `# why` after the ignore"),
    ("# type: ignore[union-attr]  #", "no reason: add `# why` after the ignore"),
    ("# type: ignore[union-attr] because", "no reason: add `# why` after the ignore"),
])
def test_the_check_tells_a_narrow_explained_ignore_from_the_rest(comment: str, problem: str | None) -> None:
    assert problem_of(comment) == problem
