"""`wearables`: one console command with a subcommand per process.

Configuration comes from environment variables (see README "Configuration" or
``runtime/settings.py``); options given on the command line win over them.
"""

from __future__ import annotations

import os
import time
import zoneinfo
from datetime import datetime
from pathlib import Path

import click
from rich.table import Table

from cli.console import console, fail, metrics_port_option, run_async, settings_from_env
from cli.topics import all_topic_plans, create_all_topics
from connectors.simulator.service import SimulatorOptions
from models.providers import Provider
from runtime.kafka import check_reachable, resolve_bootstrap
from runtime.settings import Settings

__all__ = ["main"]


def _iana_zone(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--default-timezone must name an IANA zone; anything else is a one-line error, before any work."""
    del ctx, param
    if value is not None:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            fail(f"--default-timezone {value!r} is not an IANA time zone: give one such as America/Chicago")
    return value


_default_timezone_option = click.option(
    "--default-timezone", metavar="ZONE", default=None, callback=_iana_zone,
    help="IANA time zone of participants without FITBIT/profile/<id>/profile.json (e.g. America/Chicago); "
         "others keep their profile's. Default: WEARABLES_DEFAULT_TIMEZONE; without either such an archive "
         "is refused.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="wearables-stream")
def main() -> None:
    """Wearable data ingestion stream processor for research cohorts.

    Vendor data (Fitbit Web API archives, Google Health API) flows through Kafka topics
    into deduplicated per-participant daily summaries keyed by pseudonymous research IDs.
    Start with `wearables demo`. Kafka comes from KAFKA_BOOTSTRAP_SERVERS, or else the
    embedded broker started by `wearables broker`.
    """


# --------------------------------------------------------------------------- broker
@main.command()
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port on 127.0.0.1 to listen on (default: a free port).")
@click.option("--create-topics/--no-create-topics", default=True, show_default=True,
              help="Create every topic once the broker answers.")
@click.option("--tls", is_flag=True,
              help="Serve clients over TLS only, a client certificate required (stunnel4 in front of Tansu, "
                   "with a throwaway CA made for this run in WEARABLES_DATA_DIR/broker-tls).")
@metrics_port_option(9465)
def broker(port: int | None, create_topics: bool, tls: bool, metrics_port: int | None) -> None:
    """Run the embedded Kafka-protocol broker (Tansu, in memory) on 127.0.0.1.

    Prints the bootstrap address and records it in WEARABLES_DATA_DIR/broker.json, so
    other commands started without KAFKA_BOOTSTRAP_SERVERS connect to it. Stops on
    Ctrl-C / SIGTERM and takes the broker process with it. All data is lost on stop.

    With --tls, clients connect over TLS as to a production cluster: it also prints
    KAFKA_SECURITY_PROTOCOL=SSL and the KAFKA_SSL_CAFILE, KAFKA_SSL_CERTFILE and
    KAFKA_SSL_KEYFILE to set, and records them in broker.json, so that commands run with
    the same WEARABLES_DATA_DIR connect over TLS without them.
    """
    from cli.services import run_broker

    settings = settings_from_env()
    run_async(run_broker)(settings, port=port, create_topics=create_topics, tls=tls,
                          metrics_port=_metrics_port(settings, metrics_port, 9465))


# --------------------------------------------------------------------------- topics
@main.group()
def topics() -> None:
    """Create or list the topics of the catalogue (docs/architecture.md) and Faust's internal ones."""


@topics.command("create")
def topics_create() -> None:
    """Create every topic that does not exist yet (idempotent).

    Partition counts come from WEARABLES_PARTITIONS (default 8); `participants`, `daily`
    and Faust changelogs are compacted.
    """
    settings = settings_from_env()
    run_async(_topics_create)(settings)


async def _topics_create(settings: Settings) -> None:
    created, present = await create_all_topics(settings)
    table = Table("topic", "partitions", "cleanup.policy", "status")
    for plan in all_topic_plans(settings):
        status = "[green]created[/]" if plan.name in created else "present"
        table.add_row(plan.name, str(plan.partitions), plan.config()["cleanup.policy"], status)
    console.print(table)
    console.print(f"{len(created)} created, {len(present)} already present on {resolve_bootstrap(settings)}")


@topics.command("list")
def topics_list() -> None:
    """Show the expected topics and whether each exists on the cluster."""
    settings = settings_from_env()
    run_async(_topics_list)(settings)


async def _topics_list(settings: Settings) -> None:
    existing = set(await check_reachable(settings))
    table = Table("topic", "partitions", "cleanup.policy", "exists")
    for plan in all_topic_plans(settings):
        table.add_row(plan.name, str(plan.partitions), plan.config()["cleanup.policy"],
                      "yes" if plan.name in existing else "[red]no[/]")
    console.print(table)


# --------------------------------------------------------------------------- worker
@main.command()
@metrics_port_option(9466)
def worker(metrics_port: int | None) -> None:
    """Run the stream-processing worker (Faust agents) until Ctrl-C / SIGTERM.

    Creates missing topics first. Run several workers with the same settings to share
    the partitions (one consumer group).
    """
    from cli.services import run_worker

    settings = settings_from_env()
    run_async(run_worker)(settings, metrics_port=_metrics_port(settings, metrics_port, 9466))


# --------------------------------------------------------------------------- sink
@main.command()
@click.option("--dataset", "location", default=None,
              help="Where to write: a path or object-store URL. Default: WEARABLES_DATASET or <data dir>/dataset.")
@metrics_port_option(9468)
def sink(location: str | None, metrics_port: int | None) -> None:
    """Write the daily and intraday topics to the Parquet dataset (All of Us table shapes).

    One directory per table, one file per date, rows upserted by key (the newest revision
    wins); files are replaced atomically. Run one sink per dataset; it commits its offsets
    only after the rows are written, so a restart never loses a record.
    """
    from cli.services import run_sink

    settings = settings_from_env()
    run_async(run_sink)(settings, location=location, metrics_port=_metrics_port(settings, metrics_port, 9468))


# --------------------------------------------------------------------------- export
@main.command()
@click.option("--tier", type=click.Choice(["registered", "controlled"]), required=True,
              help="registered: every date shifted back by the participant's own 1-364 days; controlled: true dates.")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First true date (inclusive).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last true date (inclusive).")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write: <out>/<table>/part-NNNNN.<format>.")
@click.option("--dataset", "location", default=None,
              help="The dataset to read. Default: WEARABLES_DATASET or <data dir>/dataset.")
def export(tier: str, first: datetime | None, last: datetime | None, fmt: str, out: Path,
           location: str | None) -> None:
    """Export the researcher tables, de-identified (registered) or with true dates (controlled)."""
    from rich.progress import Progress

    from sinks.dataset import Dataset
    from sinks.export import Format, Tier
    from sinks.export import export as run_export

    settings = settings_from_env()
    dataset = Dataset(location or settings.dataset_location)
    if not any(dataset.dates(name) for name in ("daily_summary", "steps_intraday", "heart_rate_minute_level")):
        raise click.ClickException(f"no dataset at {dataset.location}: run `wearables sink` (or `wearables replay`) "
                                   "first, or point --dataset / WEARABLES_DATASET at one")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("export", total=None)

        def advance(table: str, done: int, total: int) -> None:
            progress.update(task, description=f"{table} {done}/{total} dates", completed=done, total=total or 1)

        report = run_export(dataset, out, tier=Tier(tier), first=first.date() if first else None,
                            last=last.date() if last else None, fmt=Format(fmt),
                            secret=settings.require_secret_key(), on_partition=advance)
    for table, rows in report.rows.items():
        console.print(f"{table:<24} {rows:>12,} rows")
    console.print(f"wrote {report.files} file(s) to {out} ({tier} tier)")


# --------------------------------------------------------------------------- dictionary
@main.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the Markdown here (e.g. docs/data_dictionary.md) instead of printing it.")
@click.option("--check", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Exit 1 if FILE differs from what the table definitions give (for CI).")
def dictionary(out: Path | None, check: Path | None) -> None:
    """Render the data dictionary: every column of every table with its type, unit, meaning,
    provenance (the vendor field it comes from) and the valid-day rule.

    Generated from sinks/tables.py, the same definitions the sink writes with; the
    checked-in docs/data_dictionary.md is its output.
    """
    from sinks.dictionary import DICTIONARY_PATH, render

    text = render()
    if check is not None:
        if not check.is_file() or check.read_text(encoding="utf-8") != text:
            fail(f"{check} is not what the table definitions give: run "
                 f"`wearables dictionary --out {DICTIONARY_PATH}` and commit the result", code=1)
        console.print(f"{check} matches the table definitions")
    elif out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out} ({text.count(chr(10)):,} lines)")
    else:
        click.echo(text, nl=False)


# --------------------------------------------------------------------------- replay
@main.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The dataset directory to write (created if missing; rows upserted if it exists).")
@click.option("--timeout", type=float, default=1800.0, show_default=True,
              help="Seconds to wait for the worker to process every page.")
@_default_timezone_option
def replay(path: Path, out: Path, timeout: float, default_timezone: str | None) -> None:
    """Import a cohort's Fitbit archive (PATH holds FITBIT/), run every agent until all topics
    are drained, and write the Parquet dataset to --out.

    Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts an embedded broker for the run.
    Running it twice on the same archive and --out changes nothing. Ends with the dataset's
    figures and the run's dead letters by reason; exits 2 when pages were published but no
    day was summarized.
    """
    from cli.replay import run_replay

    settings = _settings_with_zone(default_timezone)
    run_async(run_replay)(settings, path, out, timeout=timeout)


# --------------------------------------------------------------------------- connectors
_SIM = SimulatorOptions()  # the simulator command's defaults
@main.command()
@click.option("--participants", type=click.IntRange(1, 1_000_000), default=100, show_default=True,
              help="Synthetic cohort size (accounts exist once a participant consents).")
@click.option("--days", type=click.IntRange(1, 365), default=14, show_default=True,
              help="Local days of data per participant, ending yesterday.")
@click.option("--port", type=click.IntRange(0, 65535), default=8480, show_default=True)
@click.option("--webhooks", "webhook_base", default=None, metavar="URL",
              help="The gateway's base URL; notifications go to URL/webhooks/<provider> (default: none sent).")
@click.option("--sync-interval", type=float, default=5.0, show_default=True,
              help="Seconds between rounds of device syncs (late devices catch up, some re-sync).")
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of data calls answered 500/502/503.")
@click.option("--timeout-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of data calls that hang past the client's timeout.")
@click.option("--latency", type=click.FloatRange(0, 60), default=0.0, show_default=True,
              help="Seconds added to every data call.")
@click.option("--token-lifetime", type=click.FloatRange(1, 86400), default=None,
              help="Access-token lifetime in seconds (default: the vendor's, 8 h Fitbit / 1 h Google).")
@click.option("--non-wear-share", type=click.FloatRange(0, 1), default=_SIM.non_wear_share, show_default=True,
              help="Share of participant-days the tracker is not worn: no steps, no heart rate.")
@click.option("--partial-day-share", type=click.FloatRange(0, 1), default=_SIM.partial_day_share,
              show_default=True, help="Share of participant-days worn only 3-8 hours (not a valid day).")
@click.option("--stalled-device-share", type=click.FloatRange(0, 1), default=_SIM.stalled_device_share,
              show_default=True, help="Share of devices that stopped syncing 1-5 days before the end (half sync "
                                      "again during the run, by webhook; half not).")
@click.option("--low-battery-share", type=click.FloatRange(0, 1), default=_SIM.low_battery_share,
              show_default=True, help="Share of devices reporting a battery below 20%.")
@click.option("--never-sync-share", type=click.FloatRange(0, 1), default=_SIM.never_sync_share,
              show_default=True, help="Share of participants who link but whose tracker never syncs (no data).")
@click.option("--complete", is_flag=True,
              help="Every participant-day complete: the five shares above 0 (benchmarks compare like with like).")
@metrics_port_option(9469)
def simulator(participants: int, days: int, port: int, webhook_base: str | None, sync_interval: float,
              error_rate: float, timeout_rate: float, latency: float, token_lifetime: float | None,
              non_wear_share: float, partial_day_share: float, stalled_device_share: float,
              low_battery_share: float, never_sync_share: float, complete: bool, metrics_port: int | None) -> None:
    """Serve a look-alike of the Fitbit Web API and the Google Health API with a synthetic cohort.

    Same paths and JSON shapes, OAuth2 with PKCE (consent page, single-use refresh tokens,
    revoke), rate limits with the vendors' headers and 429s, signed webhooks, late and bursty
    device syncs, and fault knobs. The cohort is like a real one by default, about 80% of
    participant-days valid (non-wear and partial days, stalled devices, low batteries, a few who
    never sync); --complete makes every day complete. GET /_sim/stats reports, among others,
    rate-limit violations.
    """
    from cli.services import run_simulator

    settings = settings_from_env()
    if complete:  # as SimulatorOptions.complete()
        non_wear_share = partial_day_share = stalled_device_share = low_battery_share = never_sync_share = 0.0
    options = SimulatorOptions(participants=participants, days=days, port=port, webhook_base=webhook_base,
                               sync_interval_s=sync_interval, error_rate=error_rate, timeout_rate=timeout_rate,
                               latency_s=latency, token_lifetime_s=token_lifetime, non_wear_share=non_wear_share,
                               partial_day_share=partial_day_share, stalled_device_share=stalled_device_share,
                               low_battery_share=low_battery_share, never_sync_share=never_sync_share)
    run_async(run_simulator)(settings, options, metrics_port=_metrics_port(settings, metrics_port, 9469))


@main.command()
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Default: WEARABLES_GATEWAY_PORT (8470).")
@metrics_port_option(9470)
def gateway(port: int | None, metrics_port: int | None) -> None:
    """Serve the vendors' webhooks: verify, acknowledge at once, publish fetch requests."""
    from cli.services import run_gateway

    settings = settings_from_env()
    run_async(run_gateway)(settings, port=port, metrics_port=_metrics_port(settings, metrics_port, 9470))


@main.command()
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Default: WEARABLES_PORTAL_PORT (8471).")
@metrics_port_option(9473)
def portal(port: int | None, metrics_port: int | None) -> None:
    """Serve the participant portal: invitation, link with a vendor, your data and its download,
    stop sharing, leave the study (English and Spanish). Participants need an invitation link
    (`wearables invite`); set WEARABLES_PORTAL_PUBLIC_URL to the address they reach it at."""
    from cli.services import run_portal

    settings = settings_from_env()
    run_async(run_portal)(settings, port=port, metrics_port=_metrics_port(settings, metrics_port, 9473))


@main.command()
@click.argument("participants", nargs=-1, required=True)
def invite(participants: tuple[str, ...]) -> None:
    """Print an invitation link to the portal for each of PARTICIPANTS (the cohort's participant IDs).

    The link is encrypted and signed with WEARABLES_SECRET_KEY, carries no readable ID, and
    expires after WEARABLES_INVITATION_MAX_AGE seconds. Send each link to its participant only.
    """
    from models.errors import ConfigurationError
    from portal.invitations import invitation_url

    settings = settings_from_env()
    try:
        settings.require_secret_key()
    except ConfigurationError as error:
        fail(str(error))
    for participant in participants:
        click.echo(invitation_url(settings, participant))


@main.command()
@click.argument("participants", nargs=-1, required=True)
@click.option("--purge", is_flag=True,
              help="Also remove their data everywhere we hold it: Parquet tables, day state, daily and participants "
                   "keys (tombstones), the vault row. Without it, collection stops and the data stays.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def withdraw(participants: tuple[str, ...], purge: bool, yes: bool) -> None:
    """Withdraw PARTICIPANTS from the study on their behalf (staff): revoke at the vendor, delete
    the tokens, publish status `withdrawn`; with --purge, delete their data too.

    Every withdrawal and purge is recorded on the append-only `audit` topic, by a keyed pseudonym
    (never the ID), with what each component removed. The worker and the sink remove their part
    as they reach the purge; the command returns once it has published it.
    """
    from cli.services import withdraw_participants

    settings = settings_from_env()
    if purge and not yes:
        click.confirm(f"Delete all data of {len(participants)} participant(s) everywhere? This cannot be undone",
                      abort=True)
    results = run_async(withdraw_participants)(settings, participants, purge=purge)
    done = [report for report in results if report is not None]
    revoked = sum(report.revoked_at_vendor for report in done)
    named = sum(report.daily_days for report in done)
    console.print(f"withdrawn: {len(done)} participant(s), {revoked} grant(s) revoked at the vendor, tokens deleted"
                  + (f"; purge published ({named} dataset day(s) named): the worker and the sink remove their part "
                     "and record it on the audit topic" if purge else ""))
    if len(done) < len(results):
        fail(f"{len(results) - len(done)} of {len(results)} participant(s) have no link and no rows here, so nothing "
             "was done for them: check the IDs (or WEARABLES_SECRET_KEY, WEARABLES_VAULT_URL, WEARABLES_DATASET)",
             code=1)


@main.command()
@metrics_port_option(9471)
def scheduler(metrics_port: int | None) -> None:
    """Fetch from the vendor APIs into raw.<provider>: webhook-driven, polled and backfilled,
    under every vendor rate limit, retrying what fails."""
    from cli.services import run_scheduler

    settings = settings_from_env()
    run_async(run_scheduler)(settings, metrics_port=_metrics_port(settings, metrics_port, 9471))


@main.command()
@click.argument("participants", nargs=-1, required=True)
@click.option("--provider", type=click.Choice([p.value for p in Provider]), required=True,
              help="google_health (the live API) or fitbit (the legacy Web API).")
def link(participants: tuple[str, ...], provider: str) -> None:
    """Link PARTICIPANTS' vendor accounts through the vendor's consent page (the simulator's, for
    the demo and tests) and request their backfill (WEARABLES_BACKFILL_DAYS).

    The participants' own browser flow arrives with the linking web page.
    """
    from cli.services import link_participants

    settings = settings_from_env()
    if settings.vendors.api_base is None:
        fail("programmatic linking drives the simulator's consent page: set WEARABLES_VENDOR_API_BASE to the "
             "simulator's URL (see `wearables simulator`)")
    linked = run_async(link_participants)(settings, participants, Provider(provider))
    console.print(f"linked {linked} participant(s) with {provider}; "
                  f"backfill of {settings.scheduler.backfill_days} days requested")


from cli.status import status  # noqa: E402 - `wearables status` lives in its own module
from cli.vault import vault  # noqa: E402 - the `vault` group lives beside its commands

main.add_command(status)
main.add_command(vault)


# --------------------------------------------------------------------------- import
@main.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Publish files again even if the import ledger has them.")
@_default_timezone_option
def import_(path: Path, force: bool, default_timezone: str | None) -> None:
    """Publish a cohort's Fitbit JSON archive (PATH/.../FITBIT/<resource>/<participant>/*.json).

    Every file goes to the raw.fitbit topic keyed by the participant's research ID, with the
    time zone from FITBIT/profile/<participant>/profile.json, else --default-timezone. Files
    whose place in the layout is not understood are skipped and reported. Running it twice
    publishes nothing new (a ledger in WEARABLES_DATA_DIR remembers what was published).
    """
    from cli.importer import run_import

    settings = _settings_with_zone(default_timezone)
    run_async(run_import)(settings, path, force=force)


def _settings_with_zone(default_timezone: str | None) -> Settings:
    """The settings, with --default-timezone (when given) in place of WEARABLES_DEFAULT_TIMEZONE."""
    return settings_from_env(**({"default_timezone": default_timezone} if default_timezone else {}))


# --------------------------------------------------------------------------- demo
@main.command()
@click.option("--participants", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="Synthetic participants in the cohort.")
@click.option("--days", type=click.IntRange(1, 90), default=3, show_default=True,
              help="Days of minute-level data per participant.")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=120, show_default=True,
              help="Seconds to wait for the worker to process everything.")
@click.option("--keep-running", is_flag=True, help="Stay up after processing (inspect metrics) until Ctrl-C.")
@click.option("--tls", is_flag=True,
              help="Start the embedded broker in its TLS mode (as `wearables broker --tls`): every client of the "
                   "demo connects over TLS with a client certificate, as to a production cluster.")
@metrics_port_option(9464)
def demo(participants: int, days: int, timeout: float, keep_running: bool, tls: bool,
         metrics_port: int | None) -> None:
    """Run everything locally: embedded broker, topics, worker, a synthetic cohort's data.

    Uses KAFKA_BOOTSTRAP_SERVERS when it is set, else starts the embedded broker (with
    --tls, reached over TLS only). Prints what was processed and exits 0 when every
    published page has been consumed.
    """
    from cli.demo import run_demo  # keeps `wearables --help` fast

    quiet = {} if "WEARABLES_LOG_LEVEL" in os.environ else {"log_level": "WARNING"}  # the console tells
    settings = settings_from_env(env="demo", **quiet)
    run_async(run_demo)(settings, participants=participants, days=days, timeout=timeout,
                        keep_running=keep_running, tls=tls, metrics_port=_metrics_port(settings, metrics_port, 9464))


# --------------------------------------------------------------------------- bench
@main.group()
def bench() -> None:
    """Benchmarks: print medians and ratios measured in one run, write JSON."""


@bench.command("pipeline")
@click.option("--participants", type=click.IntRange(1, 1_000_000), default=1000, show_default=True)
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True)
@click.option("--hr-resolution", type=click.Choice(["1min", "1s"]), default="1min", show_default=True)
@click.option("--baseline-participants", type=click.IntRange(1, 10_000), default=10, show_default=True,
              help="Participants (x days) for the one-record-per-sample baseline.")
@click.option("--workers", type=click.IntRange(1, 64), default=os.cpu_count() or 1, show_default="CPU count",
              help="Worker processes sharing the partitions (one Python process uses about one core).")
@click.option("--store", type=click.Choice(["rocksdb", "memory"]), default="rocksdb", show_default=True,
              help="The workers' table store.")
@click.option("--runs", type=click.IntRange(1, 99), default=3, show_default=True,
              help="Pipeline runs (fresh topics each); the figures are the median run's.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the figures as JSON here.")
def bench_pipeline(participants: int, days: int, hr_resolution: str, baseline_participants: int, workers: int,
                   store: str, runs: int, out: Path | None) -> None:
    """normalize -> dedup -> daily on N participants x D days of minute data, end to end.

    Uses KAFKA_BOOTSTRAP_SERVERS if set, else starts the embedded broker. Starts --workers
    `wearables worker` processes, publishes the pages as raw vendor pages, and times from the
    first page published until every sample is in its day's state. Reports samples/s end to
    end and per stage, the ratio to a one-record-per-sample Faust pipeline and to one Polars
    query over the same samples in memory, state bytes per participant-day (from the state
    changelog) and peak RSS (workers + broker).
    """
    from cli.bench import BenchParams, run_pipeline_bench

    quiet = {} if "WEARABLES_LOG_LEVEL" in os.environ else {"log_level": "WARNING"}
    settings = settings_from_env(env="demo", store=f"{store}://", topic_prefix=f"bench{int(time.time())}.", **quiet)
    params = BenchParams(participants=participants, days=days, hr_resolution=hr_resolution,
                         baseline_participants=baseline_participants, workers=workers, runs=runs)
    run_async(run_pipeline_bench)(settings, params, out)


@bench.command("connector")
@click.option("--participants", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True)
@click.option("--days", type=click.IntRange(1, 30), default=1, show_default=True,
              help="Days of data per participant, and of backfill.")
@click.option("--link-concurrency", type=click.IntRange(1, 1000), default=64, show_default=True,
              help="Participants linked at once before the timed part.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the figures as JSON here.")
def bench_connector(participants: int, days: int, link_concurrency: int, out: Path | None) -> None:
    """Benchmark the scheduler against the vendor simulator: requests/s, samples/s, rate-limit
    violations (the simulator counts them). Always runs against the simulator, in demo mode."""
    from cli.bench_connector import run_connector_bench

    settings = settings_from_env(env="demo")
    run_async(run_connector_bench)(settings, participants=participants, days=days,
                                   link_concurrency=link_concurrency, out=out)


@bench.command("baseline-worker", hidden=True)
@metrics_port_option(9467)
def bench_baseline_worker(metrics_port: int | None) -> None:
    """One process of the per-sample baseline (started by `bench pipeline`)."""
    from cli.bench_baseline import run_baseline_worker

    settings = settings_from_env()
    run_async(run_baseline_worker)(settings, _metrics_port(settings, metrics_port, 9467))


def _metrics_port(settings: Settings, option: int | None, default: int) -> int:
    if option is not None:
        return option
    return settings.metrics_port if settings.metrics_port is not None else default


if __name__ == "__main__":  # pragma: no cover
    main()
