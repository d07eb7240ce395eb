"""The Prometheus configuration and alert rules pass promtool, every alert has a promtool unit
test that fires it and one where it stays silent, and every runbook link lands on a section of
docs/operations.md."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
OPERATIONS = ROOT / "docs" / "operations.md"
RUNBOOK = re.compile(r"^docs/operations\.md#([a-z0-9-]+)$")


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed (apt-get install -y prometheus); CI must run these checks")
        pytest.skip("promtool is not installed (apt-get install -y prometheus)")
    return path


def _promtool_run(*args: str) -> str:
    """promtool's output (stdout and stderr) of a run that must succeed."""
    result = subprocess.run([_promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_promtool_check_config() -> None:
    output = _promtool_run("check", "config", "prometheus.yml")
    assert f"SUCCESS: {len(_rules())} rules found" in output  # the config loads the rule file


def test_promtool_check_rules() -> None:
    assert f"SUCCESS: {len(_rules())} rules found" in _promtool_run("check", "rules", "alerts.yml")


def test_promtool_test_rules() -> None:
    output = _promtool_run("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in output and "FAILED" not in output


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors() -> set[str]:
    text = OPERATIONS.read_text(encoding="utf-8")
    return {_slug(m[1]) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.MULTILINE)}


def test_the_config_scrapes_every_process_on_its_default_port_and_loads_the_rules() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["alerts.yml"]
    ports = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            ports[job["job_name"]] = sd["port"]
        for static in job.get("static_configs", []):
            ports[job["job_name"]] = int(static["targets"][0].rsplit(":", 1)[1])
    main = (ROOT / "cli" / "main.py").read_text(encoding="utf-8")
    for process in ("worker", "scheduler", "gateway", "portal", "sink", "simulator", "broker"):
        default = re.search(rf"@metrics_port_option\((\d+)\)\ndef {process}\(", main)
        assert default, process
        assert ports[f"wearables-{process}"] == int(default[1]), process


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_alert_has_for_severity_summary_description_and_a_runbook_section(rule: dict[str, Any]) -> None:
    assert rule.get("for"), "a `for` keeps one bad scrape from paging"
    assert rule["labels"]["severity"] in {"page", "warn"}
    annotations = rule["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    match = RUNBOOK.match(annotations["runbook"])
    assert match, annotations["runbook"]
    assert match[1] in _anchors(), f"docs/operations.md has no heading for #{match[1]}"


def test_every_alert_has_a_promtool_case_that_fires_it_and_one_where_it_is_silent() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text(encoding="utf-8"))
    assert tests["rule_files"] == ["alerts.yml"]
    fires: set[str] = set()
    silent: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else silent).add(check["alertname"])
            for alert in check["exp_alerts"]:
                assert alert["exp_annotations"]["runbook"].startswith("docs/operations.md#")
    alerts = {rule["alert"] for rule in _rules()}
    assert alerts - fires == set(), "alerts no test fires"
    assert alerts - silent == set(), "alerts no test checks silent"
    assert (fires | silent) - alerts == set(), "tests of alerts that do not exist"


def test_the_slug_matches_githubs() -> None:
    assert _slug("Consumer lag growing") == "consumer-lag-growing"
    assert _slug("Sink stalled!") == "sink-stalled"
