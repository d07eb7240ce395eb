"""Every dashboard query and every alert rule, evaluated by a real Prometheus scraping a real demo.

A short demo runs with every process (``wearables demo --keep-running``); Debian's
``prometheus`` scrapes its ``/metrics`` every second under each job name the production config
has, with the alert rules loaded. Once every job has been scraped twice, each PromQL
expression of each dashboard panel and each alert rule goes through Prometheus' HTTP API and
must return at least one series. An alert's condition filters its series away while it does
not fire, so its comparisons are evaluated with ``bool`` (``x > 5`` becomes ``x > bool 5``:
the same series, valued 0 or 1): what is checked is that the metrics it reads exist, with the
labels it joins on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.broker import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus")
GRAFANA_VARIABLES = {"$__range": "5m", "$__rate_interval": "1m", "$__interval": "15s"}
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")


def with_bool(expr: str) -> str:
    """``expr`` with ``bool`` after every comparison outside label matchers and strings."""
    out, depth, quote, i = [], 0, "", 0
    while i < len(expr):
        char = expr[i]
        if quote:
            out.append(char)
            if char == "\\":
                out.append(expr[i + 1])
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
            out.append(char)
        elif char == "{":
            depth += 1
            out.append(char)
        elif char == "}":
            depth -= 1
            out.append(char)
        elif depth == 0 and (op := next((c for c in _COMPARISONS if expr.startswith(c, i)), None)):
            out.append(f"{op} bool")
            i += len(op) - 1
        else:
            out.append(char)
        i += 1
    return "".join(out)


def test_comparisons_get_bool_outside_matchers_only() -> None:
    assert with_bool('up{job=~"a.+",x!="y"} == 0') == 'up{job=~"a.+",x!="y"} == bool 0'
    assert with_bool("rate(a[5m]) > 0.05 and b <= 3") == "rate(a[5m]) > bool 0.05 and b <= bool 3"


def _panel_exprs() -> list[tuple[str, str]]:
    found = []

    def walk(dashboard: str, panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(dashboard, panel.get("panels", []))
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                found.append((f"{dashboard}: {panel['title']}", expr))

    for path in sorted((ROOT / "grafana/dashboards").glob("*.json")):
        walk(path.stem, json.loads(path.read_text())["panels"])
    return found


def _alert_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    return [(f"alert {rule['alert']}", with_bool(rule["expr"])) for group in rules["groups"] for rule in group["rules"]]


def _jobs() -> list[str]:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    return [job["job_name"] for job in config["scrape_configs"]]


def _query(base: str, expr: str) -> list[Any]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.loads(answer.read())
    except urllib.error.HTTPError as error:  # 400/422: the expression itself is wrong; say which and why
        body = json.loads(error.read() or b"{}")
    assert body.get("status") == "success", f"{expr}: {body.get('error', body)}"
    return list(body["data"]["result"])


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _watch_with_status(port: int, settled: Callable[[], bool], timeout: float = 240) -> list[str]:
    """``wearables status --once`` against the demo every few seconds until it has settled: its frames."""
    frames, deadline = [], time.monotonic() + timeout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEARABLES_", "KAFKA_"))}
    env.update(COLUMNS="160")
    while not settled():
        assert time.monotonic() < deadline, "timed out waiting for the demo to settle"
        shown = subprocess.run([sys.executable, "-m", "cli.main", "status", "--once", "--interval", "1", "--url",
                                f"http://127.0.0.1:{port}/metrics"], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=60, check=False)
        if shown.returncode == 0:
            frames.append(shown.stdout)
        time.sleep(1.0)
    return frames


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[int, list[str]]]:
    """A demo kept running; yields its metrics port and the `wearables status` frames seen while it worked."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEARABLES_", "KAFKA_"))}
    env.update(WEARABLES_DATA_DIR=str(tmp_path / "demo"), COLUMNS="160")
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "demo", "--participants", "16", "--days", "2",
                                "--keep-running", "--metrics-port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    try:
        frames = _watch_with_status(port, lambda: any("running; press Ctrl-C" in line for line in lines)
                                    or process.poll() is not None)
        assert process.poll() is None, "".join(lines)
        yield port, frames
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.timeout(420)
def test_every_dashboard_query_and_alert_rule_returns_series_from_a_real_prometheus(
        demo: tuple[int, list[str]], tmp_path: Path) -> None:
    port, frames = demo
    # `wearables status` against the running demo showed pages flowing and the worker's lag table
    moving = [f for f in frames if re.search(r"raw pages\s+│\s+[1-9][\d,.]*/s", f)]
    assert moving, "no status frame showed raw pages per second > 0:\n" + "\n".join(frames[-2:])
    assert any(re.search(r"wearables\.worker\s+│\s+wearables\.raw\.", f) for f in frames), frames[-1]
    if PROMETHEUS is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed: .ci/run installs Debian's prometheus")
        pytest.skip("Debian's prometheus is not installed (apt-get install prometheus)")
    shutil.copy(ROOT / "deploy/prometheus/alerts.yml", tmp_path / "alerts.yml")
    # The demo is every process in one, on one /metrics: each job scrapes it (so each has its `up`),
    # and all but the first drop what they scraped, so that no metric is there twice under two jobs.
    jobs = _jobs()
    drop = [{"source_labels": ["__name__"], "regex": ".+", "action": "drop"}]
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": ["alerts.yml"],
              "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                                  **({"metric_relabel_configs": drop} if n else {})} for n, job in enumerate(jobs)]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    web = free_port()
    base = f"http://127.0.0.1:{web}"
    prometheus = subprocess.Popen([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{web}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def scraped_twice() -> bool:
            counts = {r["metric"]["job"]: float(r["value"][1]) for r in _query(base, "count_over_time(up[1m])")}
            return all(counts.get(job, 0) >= 2 for job in jobs)

        _wait(scraped_twice, 60, "two scrapes of every job")
        time.sleep(2)  # rates over the newest samples
        queries = _panel_exprs() + _alert_exprs()
        assert len(queries) > 60
        empty = [f"{name}: {expr}" for name, expr in queries if not _query(base, expr)]
        assert empty == [], "queries that returned no series:\n" + "\n".join(empty)
        assert all(float(r["value"][1]) == 1 for r in _query(base, "up")), "a job's scrape failed"
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
