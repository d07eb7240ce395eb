"""The dashboards are code: the checked-in JSON is what grafana/build.py renders, and every panel
queries the provisioned Prometheus datasource for metrics some process exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from grafana import build
from tests.test_observability import METRIC, dashboard_panels, exported_sample_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "grafana" / "dashboards"
NAMES = sorted(build.DASHBOARDS)


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DASHBOARDS / name).read_text(encoding="utf-8"))
    return data


def test_the_builder_makes_four_dashboards_and_nothing_else_is_checked_in() -> None:
    assert len(NAMES) == 4
    assert sorted(path.name for path in DASHBOARDS.glob("*.json")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_checked_in_json_is_what_the_builder_renders(name: str) -> None:
    rendered = build.render(build.DASHBOARDS[name]())
    assert (DASHBOARDS / name).read_text(encoding="utf-8") == rendered, "run: python -m grafana.build"


def test_check_mode_agrees(tmp_path: Path) -> None:
    assert build.main(["--check"]) == 0
    assert build.main(["--check", "--out", str(tmp_path)]) == 1  # nothing there yet
    assert build.main(["--out", str(tmp_path)]) == 0
    assert build.main(["--check", "--out", str(tmp_path)]) == 0


def test_the_datasource_uid_is_the_provisioned_one() -> None:
    provisioned = yaml.safe_load((ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uids = {source["uid"] for source in provisioned["datasources"] if source["type"] == "prometheus"}
    assert uids == {build.DATASOURCE_UID}


@pytest.mark.parametrize("name", NAMES)
def test_dashboard_parses_with_unique_uid_title_and_panel_ids(name: str) -> None:
    dashboard = _load(name)
    assert dashboard["uid"].startswith("wearables-") and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    ids += [nested["id"] for panel in dashboard["panels"] for nested in panel.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    assert all(isinstance(i, int) for i in ids)


def test_dashboard_uids_are_unique() -> None:
    uids = [_load(name)["uid"] for name in NAMES]
    assert len(uids) == len(set(uids))


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{name}: {panel['title']}", panel) for name in NAMES for panel in dashboard_panels(_load(name))]


@pytest.mark.parametrize(("where", "panel"), _panels(), ids=[where for where, _ in _panels()])
def test_panel_has_a_title_a_description_queries_and_the_provisioned_datasource(where: str,
                                                                                panel: dict[str, Any]) -> None:
    assert panel["title"].strip()
    assert panel["description"] and len(panel["description"].split()) >= 5, "describe the panel in plain words"
    assert panel["datasource"] == build.DATASOURCE
    assert panel["targets"], "no query"
    for target in panel["targets"]:
        assert target["expr"].strip()
        assert target["datasource"] == build.DATASOURCE


@pytest.mark.parametrize(("where", "panel"), _panels(), ids=[where for where, _ in _panels()])
def test_panel_names_only_exported_metrics(where: str, panel: dict[str, Any]) -> None:
    used = {name for target in panel["targets"] for name in METRIC.findall(target["expr"])}
    assert used, "a panel shows at least one wearables_* metric"
    unknown = used - exported_sample_names()
    assert not unknown, f"not exported by any process: {sorted(unknown)}"


@pytest.mark.parametrize("name", NAMES)
def test_panels_do_not_overlap(name: str) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in _load(name)["panels"]:
        grid = panel["gridPos"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        assert grid["x"] + grid["w"] <= 24
        taken |= cells
