"""The `wearables` command as a user meets it: help texts and one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import _settings_with_zone, main
from connectors.simulator.service import SimulatorOptions
from models.providers import Provider
from portal.invitations import read_invitation
from runtime.broker import EmbeddedBroker, free_port
from runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ["broker", "demo", "import", "replay", "topics", "worker", "simulator", "gateway", "scheduler", "link",
               "dictionary", "portal", "invite", "withdraw", "vault", "status"]


def _wearables(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WEARABLES_", "KAFKA_"))}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          env=clean, cwd=ROOT, timeout=timeout, check=False)


def test_help_lists_every_subcommand() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    listed = result.output.split("Commands:")[1]
    for name in SUBCOMMANDS:
        assert f"  {name} " in listed


@pytest.mark.parametrize("command", [[name] for name in SUBCOMMANDS] + [["topics", "create"], ["topics", "list"],
                                                                      ["vault", "rotate-key"]])
def test_each_subcommand_has_its_own_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert result.output.startswith(f"Usage: main {' '.join(command)}")
    assert len(result.output.splitlines()) > 3


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WEARABLES_PARTITIONS": "lots"}, "WEARABLES_PARTITIONS='lots'"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "no-port-here"}, "KAFKA_BOOTSTRAP_SERVERS='no-port-here'"),
        ({"WEARABLES_LOG_LEVEL": "LOUD"}, "WEARABLES_LOG_LEVEL"),
    ],
)
def test_malformed_variable_is_a_one_line_error(env: dict[str, str], expected: str) -> None:
    result = _wearables("worker", env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wearables: error: ") and expected in lines[0]


def test_unreachable_bootstrap_server_is_a_one_line_error(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    result = _wearables("topics", "create", env={
        "KAFKA_BOOTSTRAP_SERVERS": address, "WEARABLES_KAFKA_CONNECT_TIMEOUT": "2",
        "WEARABLES_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"cannot reach Kafka at {address}" in lines[0]
    assert "KAFKA_BOOTSTRAP_SERVERS" in lines[0]


def test_no_kafka_at_all_says_how_to_get_one(tmp_path: Path) -> None:
    result = _wearables("worker", env={"WEARABLES_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "wearables broker" in result.stderr and "KAFKA_BOOTSTRAP_SERVERS" in result.stderr


def test_broker_refuses_when_a_cluster_is_configured() -> None:
    result = _wearables("broker", env={"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"})
    assert result.returncode == 2
    assert "unset it to run the embedded broker" in result.stderr


def _profileless_archive(root: Path) -> Path:
    """Two participants with a page each and no FITBIT/profile/ at all."""
    for person in ("P1234567890", "P2345678901"):
        folder = root / "FITBIT" / "activities-steps-intraday" / person
        folder.mkdir(parents=True)
        (folder / "activities_steps_date_2021-11-10_1d_1min.json").write_text("{}")
    return root


@pytest.mark.parametrize("command", ["import", "replay"])
def test_an_archive_without_profiles_is_refused_in_one_line_before_kafka(command: str, tmp_path: Path) -> None:
    archive = _profileless_archive(tmp_path / "archive")
    out = ["--out", str(tmp_path / "dataset")] if command == "replay" else []
    result = _wearables(command, str(archive), *out, env={"WEARABLES_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "wearables: error: 2 participants have no FITBIT/profile/<id>/profile.json (their time zone), so nothing was "
        "published: give --default-timezone ZONE or set WEARABLES_DEFAULT_TIMEZONE to the cohort's IANA zone "
        "(e.g. America/Chicago)"]
    assert "P1234567890" not in result.stdout + result.stderr and result.stdout == ""
    assert not (tmp_path / "data" / "imports.sqlite").exists() and not (tmp_path / "dataset").exists()


@pytest.mark.parametrize("command", ["import", "replay"])
def test_a_default_zone_lets_the_command_go_on_to_kafka(command: str, tmp_path: Path) -> None:
    """Given by the variable, or by the option over a bad variable: the next thing is Kafka (unreachable here)."""
    archive = _profileless_archive(tmp_path / "archive")
    out = ["--out", str(tmp_path / "dataset")] if command == "replay" else []
    kafka = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", "WEARABLES_KAFKA_CONNECT_TIMEOUT": "1",
             "WEARABLES_DATA_DIR": str(tmp_path / "data"), "WEARABLES_ENV": "demo"}
    for zone_env, option in (({"WEARABLES_DEFAULT_TIMEZONE": "America/Chicago"}, []),
                             ({"WEARABLES_DEFAULT_TIMEZONE": "Mars/Base"}, ["--default-timezone", "UTC"])):
        result = _wearables(command, str(archive), *out, *option, env={**kafka, **zone_env})
        assert result.returncode == 2
        assert "cannot reach Kafka" in result.stderr and "profile.json" not in result.stderr


def test_the_option_overrides_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEARABLES_DEFAULT_TIMEZONE", "America/Chicago")
    monkeypatch.setattr("cli.console.setup_logging", lambda level: None)  # the test process keeps its logging
    assert _settings_with_zone("Europe/Berlin").default_timezone == "Europe/Berlin"
    assert _settings_with_zone(None).default_timezone == "America/Chicago"


@pytest.mark.parametrize("command", ["import", "replay"])
def test_a_default_zone_that_is_not_iana_is_a_one_line_error(command: str, tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "dataset")] if command == "replay" else []
    result = _wearables(command, str(tmp_path), *out, "--default-timezone", "Mars/Base")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "wearables: error: --default-timezone 'Mars/Base' is not an IANA time zone: give one such as America/Chicago"]
    help_text = CliRunner().invoke(main, [command, "--help"]).output
    assert "--default-timezone ZONE" in help_text and "WEARABLES_DEFAULT_TIMEZONE" in help_text


def _demo_cohort(participants: int, days: int) -> tuple[int, int, int, int]:
    """What the demo's simulator (SimulatorOptions' realistic defaults) holds today: participant-days
    with data that reach the vendor within the run (worn at all, and not on a device stalled for the
    run), how many of them were worn all day, how many are valid days, and how many end a logged night."""
    world = SimulatorOptions(participants=participants, days=days).build_world()
    with_data = whole = valid = nights = 0
    for person in world.cohort.participant_ids:
        account = world.account(Provider.FITBIT, person)  # syncs and stalls are the person's, either vendor
        for day in (world.first_day + timedelta(days=i) for i in range(days)):
            start, end = world.cohort.worn(person, day)
            if start == end or (world.stalled(account) and world.visible_minutes(account, day) == 0):
                continue
            with_data += 1
            whole += (start, end) == (0, 1440)  # a partial day is < 10 h with steps: never valid
            steps = world.cohort.minute_steps(person, day)
            valid += sum(any(steps[h * 60:h * 60 + 60]) for h in range(24)) >= 10 and 100 <= sum(steps) <= 45_000
            nights += world.cohort.sleep_night(person, day) is not None
    return with_data, whole, valid, nights


@pytest.mark.integration
def test_demo_links_the_cohort_and_summarizes_every_day(tmp_path: Path) -> None:
    result = _wearables("demo", "--participants", "4", "--days", "2", "--metrics-port", "0",
                        env={"WEARABLES_DATA_DIR": str(tmp_path), "COLUMNS": "160"}, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "linked 4 participants through the simulator's consent pages" in result.stdout
    assert re.search(r"rate-limit violations\s+│\s+0\s", result.stdout)
    # a realistic cohort: of 4 participants x 2 days, the days without wear (or never synced) have no data
    with_data, whole, valid, nights = _demo_cohort(4, 2)
    assert f"daily topic: {with_data} participant-days with data summarized, {valid} valid days" in result.stdout
    samples = re.search(r"samples published\s+│\s+([\d,]+)", result.stdout)
    assert samples is not None and int(samples.group(1).replace(",", "")) > whole * 1000  # minute-level days
    fetched = re.search(r"raw pages fetched / processed\s+│\s+([\d,]+) / ([\d,]+)", result.stdout)
    assert fetched is not None and fetched.group(1) == fetched.group(2)
    slept = re.search(r"(\d+) with a night's sleep, median (\d+) h", result.stdout)
    assert slept is not None and int(slept.group(1)) == nights and (not nights or 6 <= int(slept.group(2)) <= 10)
    assert {"daily_summary", "steps_intraday", "heart_rate_minute_level", "sleep_daily_summary", "sleep_level"} <= {
        p.name for p in (tmp_path / "dataset").iterdir()}
    # the portal ran, and the demo ends with an invitation for one synthetic participant, which names nobody
    assert re.search(r"participant portal: http://127\.0\.0\.1:\d+ ", result.stdout)
    link = re.search(r"(http://127\.0\.0\.1:\d+)/i/(\S+)", result.stdout)
    assert link is not None
    assert read_invitation(Settings(env="demo"), link.group(2)) == "DEMO-PARTICIPANT"
    assert not re.search(r"P\d{10}", result.stdout)  # no ID of the simulator's cohort is printed
    assert "research_id" not in result.stdout
    found, person_ids, rids = _identifiers_in(result.stdout + result.stderr, tmp_path / "dataset", 4, 2)
    assert person_ids and person_ids <= rids  # the scan looked for the run's real research IDs
    assert found == []


def _identifiers_in(output: str, dataset: Path, participants: int, days: int) -> tuple[list[str], set[str], set[str]]:
    """Where the demo's participant IDs, research IDs or vendor user IDs show up in what it leaves
    behind (its output, every Parquet column) where the design does not put them: research IDs
    belong in ``person_id`` only. (Its tokens live in a vault that goes with its temporary folder.)"""
    import polars as pl

    from models.ids import research_id

    world = SimulatorOptions(participants=participants, days=days).build_world()
    people = set(world.cohort.participant_ids)
    vendor_ids = {world.account(p, person).user_id for p in Provider for person in people}
    rids = {research_id(Settings(env="demo").require_secret_key(), person) for person in people}
    found = [f"output: {len(hits)}" for hits in [[i for i in people | vendor_ids | rids if i in output]] if hits]
    person_ids: set[str] = set()
    for file in sorted(dataset.rglob("*.parquet")):
        frame = pl.read_parquet(file)
        if "person_id" in frame.columns:
            person_ids |= set(frame["person_id"].to_list())
        for column in frame.columns:
            text = "\n".join(str(v) for v in frame[column].unique().to_list())
            forbidden = people | vendor_ids | (set() if column == "person_id" else rids)
            if hits := [i for i in forbidden if i in text]:
                found.append(f"{file.relative_to(dataset)}:{column}: {len(hits)}")
    return found, person_ids, rids


def test_invite_prints_one_link_per_participant_naming_nobody() -> None:
    result = _wearables("invite", "P123", "P456", env={"WEARABLES_ENV": "demo",
                                                       "WEARABLES_PORTAL_PUBLIC_URL": "https://portal.example.org"})
    assert result.returncode == 0, result.stderr
    links = result.stdout.split()
    assert len(links) == 2 and all(link.startswith("https://portal.example.org/i/") for link in links)
    assert "P123" not in result.stdout and "P456" not in result.stdout
    tokens = [link.rpartition("/")[2] for link in links]
    assert [read_invitation(Settings(env="demo"), token) for token in tokens] == ["P123", "P456"]


def test_invite_outside_the_demo_needs_a_secret_key() -> None:
    result = _wearables("invite", "P123")
    assert result.returncode == 2 and "WEARABLES_SECRET_KEY" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.integration
def test_withdraw_of_participants_nobody_knows_does_nothing_and_says_so(broker: EmbeddedBroker, tmp_path: Path) -> None:
    env = {"WEARABLES_ENV": "demo", "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "WEARABLES_DATA_DIR": str(tmp_path),
           "WEARABLES_TOPIC_PREFIX": "withdraw-cli."}
    result = _wearables("withdraw", "P-nobody", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "withdrawn: 0 participant(s)" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("wearables: error:")]
    assert len(errors) == 1 and "1 of 1 participant(s) have no link and no rows here" in errors[0]
