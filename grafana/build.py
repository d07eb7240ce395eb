"""Build the Grafana dashboards from code and write them to grafana/dashboards/*.json.

    python -m grafana.build          # write the JSON files
    python -m grafana.build --check  # exit 1 if a checked-in file differs from what this renders

Four dashboards, each panel a query on the provisioned Prometheus datasource (uid ``prometheus``,
grafana/provisioning/datasources/prometheus.yml):

- ``wearables-pipeline``: pages, samples and records in and out of every stage, dead letters,
  consumer-group lag, processing latency;
- ``wearables-vendor-api``: vendor requests by outcome, 429s and rate-limit headroom, token
  refreshes, webhooks, the scheduler;
- ``wearables-cohort``: valid-day share, participants without data, data freshness, device
  battery and time since the last sync;
- ``wearables-participants``: the linking funnel, linked participants by status and API
  generation, revocations, unlinks, withdrawals, the portal.

The JSON is rendered with sorted keys and a trailing newline, so it is stable byte for byte and
tests/grafana/test_dashboards.py can compare it with the checked-in files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    BarGauge,
    Dashboard,
    GridPos,
    Panel,
    RowPanel,
    Stat,
    Target,
    Time,
    TimeSeries,
)

__all__ = ["DASHBOARDS", "DATASOURCE", "DATASOURCE_UID", "OUT_DIR", "build_all", "main", "render"]

#: The uid of the Prometheus datasource in grafana/provisioning/datasources/prometheus.yml.
DATASOURCE_UID = "prometheus"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
OUT_DIR = Path(__file__).resolve().parent / "dashboards"

_WIDTH = 24  # Grafana's grid is 24 columns wide
_HEIGHT = 8
_REF_IDS = "ABCDEFGHIJ"


# --------------------------------------------------------------------------- panel helpers
def _targets(queries: Sequence[tuple[str, str]], *, instant: bool = False, fmt: str = "time_series") -> list[Target]:
    return [Target(expr=expr, legendFormat=legend, refId=_REF_IDS[i], datasource=DATASOURCE, instant=instant,
                   format=fmt) for i, (expr, legend) in enumerate(queries)]


def timeseries(title: str, description: str, *queries: tuple[str, str], unit: str = "short",
               stacked: bool = False) -> TimeSeries:
    """A line chart: one line per series of each ``(expr, legend)`` query."""
    return TimeSeries(title=title, description=description, dataSource=DATASOURCE, targets=_targets(queries),
                      unit=unit, stacking={"mode": "normal", "group": "A"} if stacked else {},
                      fillOpacity=20 if stacked else 0, legendDisplayMode="table", legendPlacement="bottom",
                      legendCalcs=["lastNotNull", "max"], tooltipMode="multi")


def stat(title: str, description: str, *queries: tuple[str, str], unit: str = "short",
         decimals: int | None = None) -> Stat:
    """One big number per series (the latest value)."""
    return Stat(title=title, description=description, dataSource=DATASOURCE, targets=_targets(queries, instant=True),
                format=unit, decimals=decimals, reduceCalc="lastNotNull", graphMode="area", textMode="value_and_name")


def bars(title: str, description: str, *queries: tuple[str, str], unit: str = "short",
         buckets: bool = False) -> BarGauge:
    """Horizontal bars, one per series: a funnel, a breakdown or (``buckets``) a distribution."""
    return BarGauge(title=title, description=description, dataSource=DATASOURCE,
                    targets=_targets(queries, instant=True, fmt="heatmap" if buckets else "time_series"),
                    format=unit, calc="lastNotNull", displayMode="gradient", orientation="horizontal",
                    min=0, max=None, thresholds=[])


@dataclass
class Section:
    """A row heading and the panels under it, laid out two per line."""

    title: str
    panels: list[Panel] = field(default_factory=list)
    columns: int = 2


def _layout(sections: Sequence[Section]) -> list[Panel]:
    panels: list[Panel] = []
    y = 0
    for section in sections:
        panels.append(RowPanel(title=section.title, collapsed=False, gridPos=GridPos(h=1, w=_WIDTH, x=0, y=y)))
        y += 1
        width = _WIDTH // section.columns
        for i, panel in enumerate(section.panels):
            column, line = i % section.columns, i // section.columns
            panel.gridPos = GridPos(h=_HEIGHT, w=width, x=column * width, y=y + line * _HEIGHT)
            panels.append(panel)
        y += -(-len(section.panels) // section.columns) * _HEIGHT
    return panels


def _dashboard(uid: str, title: str, description: str, sections: Sequence[Section]) -> Dashboard:
    return Dashboard(uid=uid, title=title, description=description, tags=["wearables"], refresh="30s",
                     time=Time("now-6h", "now"), timezone="utc", editable=True,
                     panels=_layout(sections)).auto_panel_ids()


def _q(rate: str, by: str, legend: str, window: str = "5m") -> tuple[str, str]:
    """``sum by (<by>) (rate(<rate>[window]))`` with its legend."""
    return f"sum by ({by}) (rate({rate}[{window}]))", legend


def _p95(bucket: str, by: str = "", legend: str = "p95", quantile: float = 0.95) -> tuple[str, str]:
    grouping = f"le, {by}" if by else "le"
    return f"histogram_quantile({quantile}, sum by ({grouping}) (rate({bucket}[5m])))", legend


# --------------------------------------------------------------------------- (a) pipeline
def pipeline() -> Dashboard:
    intake = Section("Intake: vendor pages to samples", [
        timeseries("Raw pages published by the connectors / s",
                   "Vendor API pages the scheduler fetched and wrote to the raw topics, by vendor and data type.",
                   _q("wearables_connector_pages_published_total", "provider, data_type", "{{provider}} {{data_type}}"),
                   unit="ops"),
        timeseries("Raw pages normalized / s",
                   "Raw pages the worker read, by vendor and outcome: normalized, or sent to the dead-letter "
                   "topic because they could not be read.",
                   _q("wearables_normalize_pages_total", "provider, outcome", "{{provider}} {{outcome}}"), unit="ops"),
        timeseries("Samples out / s by metric",
                   "Samples the normalizers accepted into batches for the samples topic, by metric (steps, "
                   "heart rate, sleep ...).",
                   _q("wearables_normalize_samples_total", "metric", "{{metric}}"), unit="ops", stacked=True),
        timeseries("Samples rejected / s by reason",
                   "Samples the normalizers refused (out of range, bad timestamp ...). A few are normal; a jump "
                   "usually means a vendor changed a format.",
                   _q("wearables_normalize_samples_rejected_total", "provider, reason", "{{provider}} {{reason}}"),
                   unit="ops"),
    ])
    daily = Section("Daily state and the sink", [
        timeseries("Dedup outcomes / s",
                   "Samples after deduplication: new ones, duplicates the vendor sent again, and updates.",
                   _q("wearables_dedup_samples_total", "outcome", "{{outcome}}"), unit="ops", stacked=True),
        timeseries("Daily summaries emitted / s",
                   "Daily summaries written to the daily topic, by status (open, final, late).",
                   _q("wearables_daily_summaries_total", "status", "{{status}}"), unit="ops", stacked=True),
        timeseries("Sink records consumed / s",
                   "Records the sink read from the daily and intraday topics, by outcome (written, tombstone, "
                   "dead letter).",
                   _q("wearables_sink_records_total", "topic, outcome", "{{topic}} {{outcome}}"), unit="ops"),
        timeseries("Rows merged into the dataset / s",
                   "Rows the sink wrote into the Parquet dataset, by table.",
                   _q("wearables_sink_rows_total", "table", "{{table}}"), unit="ops", stacked=True),
        stat("Time since the last sink flush",
             "How long ago the sink last wrote to the dataset. Above 10 minutes while records arrive, the "
             "sink is stalled (alert WearablesSinkStalled).",
             ("time() - max(wearables_sink_last_flush_timestamp_seconds)", "since last flush"), unit="s"),
        timeseries("Worker readiness",
                   "1 once a worker has joined its consumer group and recovered its tables; 0 while it starts "
                   "or rebalances.",
                   ("max by (instance) (wearables_worker_ready)", "{{instance}}")),
    ])
    errors = Section("Dead letters and errors", [
        timeseries("Dead letters / s by stage and reason",
                   "Records set aside on the dead-letter topic, by the stage that refused them and why. They are "
                   "kept for replay, nothing is lost, but the data is late until replayed.",
                   _q("wearables_dead_letters_total", "stage, reason", "{{stage}} {{reason}}"), unit="ops"),
        timeseries("Dead-letter share of raw pages",
                   "The part of raw pages that went to the dead-letter topic over 30 minutes. The alert "
                   "WearablesDeadLetterShareHigh fires above 5%.",
                   ("sum by (provider) (rate(wearables_normalize_pages_total{outcome=\"dead_letter\"}[30m]))"
                    " / sum by (provider) (rate(wearables_normalize_pages_total[30m]))", "{{provider}}"),
                   unit="percentunit"),
        timeseries("Agent batch errors / s",
                   "Whole batches that raised in an agent, by stage; their records went to the dead-letter path.",
                   _q("wearables_agent_batch_errors_total", "stage", "{{stage}}"), unit="ops"),
        timeseries("Records of purged participants skipped / s",
                   "Records dropped because the participant left the study and asked for their data to be "
                   "purged. Expected after a withdrawal.",
                   _q("wearables_purged_records_skipped_total", "stage", "{{stage}}"), unit="ops"),
    ])
    lag = Section("Consumer-group lag", [
        timeseries("Consumer-group lag by topic",
                   "Records written to each topic that its consumer group has not committed yet (end offset "
                   "minus committed offset, summed over partitions). Growing lag means the consumers fall "
                   "behind; Kafka retention is the deadline. The sink and the embedded broker both report it: "
                   "the highest report per partition counts.",
                   ("sum by (group, topic) (max by (group, topic, partition) (wearables_consumer_group_lag))",
                    "{{group}} {{topic}}")),
        timeseries("Consumer-group lag by partition",
                   "The same lag per partition: one partition far above the others points at a hot key or a "
                   "stuck worker.",
                   ("max by (group, topic, partition) (wearables_consumer_group_lag)",
                    "{{group}} {{topic}}/{{partition}}")),
        timeseries("Topic end offsets and committed offsets",
                   "How far each topic has been written (end offset) and how far its groups have committed.",
                   ("sum by (topic) (max by (topic, partition) (wearables_topic_end_offset))", "end {{topic}}"),
                   ("sum by (group, topic) (max by (group, topic, partition) "
                    "(wearables_consumer_group_committed_offset))",
                    "committed {{group}} {{topic}}")),
        timeseries("Lag monitor errors (15 min)",
                   "Failed reads of the offsets by the lag monitor (it runs in the sink and the embedded "
                   "broker). While it fails, the lag panels and alerts are blind.",
                   ("sum(increase(wearables_lag_monitor_errors_total[15m]))", "errors")),
        timeseries("Worker lag as Faust sees it",
                   "End offset minus committed offset of the partitions assigned to the workers, from Faust's "
                   "own metrics.",
                   ("sum by (topic) (wearables_faust_topic_partition_end_offset - on (topic, partition) "
                    "wearables_faust_topic_partition_offset_commited)", "{{topic}}")),
        timeseries("Worker rebalances",
                   "How many times the workers rebalanced; each rebalance pauses processing.",
                   ("max by (instance) (wearables_faust_total_rebalances)", "{{instance}}")),
    ])
    latency = Section("Processing latency", [
        timeseries("Normalize time per page (p50, p95)",
                   "Time the worker needs to normalize one raw page.",
                   _p95("wearables_normalize_page_seconds_bucket", quantile=0.5, legend="p50"),
                   _p95("wearables_normalize_page_seconds_bucket"), unit="s"),
        timeseries("Daily agent time per take (p95)",
                   "Time to apply one take of sample batches to the daily state, and per phase.",
                   _p95("wearables_daily_batch_seconds_bucket", legend="whole take"),
                   _p95("wearables_daily_phase_seconds_bucket", by="phase", legend="{{phase}}"), unit="s"),
        timeseries("Faust event runtime (p95)",
                   "Time Faust spends on one event in the workers, in milliseconds.",
                   _p95("wearables_faust_events_runtime_ms_bucket"), unit="ms"),
        timeseries("Sink flush time (p50, p95)",
                   "Time the sink needs to write one flush to the dataset.",
                   _p95("wearables_sink_flush_seconds_bucket", quantile=0.5, legend="p50"),
                   _p95("wearables_sink_flush_seconds_bucket"), unit="s"),
    ])
    return _dashboard("wearables-pipeline", "Wearables: pipeline throughput and lag",
                      "Pages, samples and records through every stage, dead letters, consumer lag and latency.",
                      [intake, daily, errors, lag, latency])


# --------------------------------------------------------------------------- (b) vendor API
def vendor_api() -> Dashboard:
    requests = Section("Vendor API requests", [
        timeseries("Vendor requests / s by outcome",
                   "Calls to the vendor APIs, by vendor, data type and outcome (ok, rate limited, token "
                   "expired, revoked, scope missing, unavailable).",
                   _q("wearables_connector_requests_total", "provider, data_type, outcome",
                      "{{provider}} {{data_type}} {{outcome}}"), unit="reqps"),
        timeseries("429 answers / s",
                   "Requests the vendor refused with 429 Too Many Requests. A storm means we are over the "
                   "vendor's limit (alert WearablesVendorRateLimitStorm).",
                   ("sum by (provider) (rate(wearables_connector_requests_total{outcome=\"rate_limited\"}[5m]))",
                    "{{provider}}"), unit="reqps"),
        timeseries("Vendor down",
                   "1 while every call to a vendor answers 5xx or times out: fetches wait for one probe call at "
                   "a time instead of retrying (alert WearablesVendorDown).",
                   ("max by (provider) (wearables_connector_vendor_down)", "{{provider}}")),
        timeseries("Rate-limit headroom",
                   "Requests left in the vendor's current rate-limit window, as the vendor reports it in its "
                   "answers (lowest over processes).",
                   ("min by (provider) (wearables_connector_rate_limit_remaining)", "{{provider}}")),
        timeseries("Requests held back by our limiter / s",
                   "Requests we delayed ourselves to stay under a vendor limit, by reason. Waiting is normal; "
                   "429s are not.",
                   _q("wearables_connector_rate_limit_waits_total", "provider, reason", "{{provider}} {{reason}}"),
                   unit="ops"),
        timeseries("Vendor request latency (p95)",
                   "How long a vendor API call takes, by vendor.",
                   _p95("wearables_connector_request_seconds_bucket", by="provider", legend="{{provider}}"), unit="s"),
        timeseries("Fetches carried out / s by outcome",
                   "Fetch requests the scheduler carried out, by vendor, reason (webhook, poll, backfill) and "
                   "outcome.",
                   _q("wearables_connector_fetches_total", "provider, reason, outcome",
                      "{{provider}} {{reason}} {{outcome}}"), unit="ops"),
    ])
    tokens = Section("Tokens and webhooks", [
        timeseries("Token refreshes / s by outcome",
                   "Access-token refreshes, by vendor and outcome. 'revoked' means the vendor refused the "
                   "refresh token: the participant must link again.",
                   _q("wearables_connector_token_refreshes_total", "provider, outcome", "{{provider}} {{outcome}}"),
                   unit="ops"),
        timeseries("Webhook calls / s by outcome",
                   "Webhook calls at the gateway, by vendor and outcome: verified or refused subscriber "
                   "verifications, accepted notifications, unknown users, malformed bodies.",
                   _q("wearables_gateway_webhooks_total", "provider, outcome", "{{provider}} {{outcome}}"),
                   unit="ops"),
        timeseries("Webhook answer time (p95)",
                   "How fast the gateway answers a webhook call; vendors retry or disable slow subscribers.",
                   _p95("wearables_gateway_webhook_ack_seconds_bucket", by="provider", legend="{{provider}}"),
                   unit="s"),
        timeseries("Google signing-key set age",
                   "How old the gateway's copy of Google's notification signing keys is.",
                   ("max(wearables_gateway_google_keyset_age_seconds)", "age"), unit="s"),
    ])
    scheduler = Section("Scheduler", [
        timeseries("Fetches in flight",
                   "Fetch requests the scheduler is carrying out right now.",
                   ("sum by (instance) (wearables_scheduler_fetches_in_flight)", "{{instance}}")),
        timeseries("Fetch requests consumed / s",
                   "Fetch requests the scheduler read from the fetch-requests topic, by reason and outcome.",
                   _q("wearables_scheduler_fetch_requests_total", "reason, outcome", "{{reason}} {{outcome}}"),
                   unit="ops"),
    ])
    return _dashboard("wearables-vendor-api", "Wearables: vendor API health",
                      "Vendor requests by outcome, 429s and rate-limit headroom, tokens, webhooks and the scheduler.",
                      [requests, tokens, scheduler])


# --------------------------------------------------------------------------- (c) cohort
def cohort() -> Dashboard:
    completeness = Section("Completeness", [
        stat("Valid-day share",
             "The part of participant-days that count as valid wear days, yesterday and over the last 7 days. "
             "Yesterday more than 10 points under the 7-day level fires WearablesCompletenessDropped.",
             ("max by (window) (wearables_cohort_valid_day_share)", "{{window}}"), unit="percentunit", decimals=1),
        timeseries("Valid-day share over time",
                   "The valid-day share, yesterday and over 7 days, as it changes.",
                   ("max by (window) (wearables_cohort_valid_day_share)", "{{window}}"), unit="percentunit"),
        bars("Participants without data",
             "Linked participants with no data for at least 1, 3 and 7 days: the follow-up list for the study "
             "coordinators.",
             ("max by (days) (wearables_cohort_participants_without_data)", "{{days}} days")),
        stat("Participants in the cohort",
             "Participants the completeness figures are computed over.",
             ("max(wearables_cohort_participants)", "participants")),
    ])
    freshness = Section("Data freshness", [
        timeseries("Data freshness by vendor",
                   "How old the newest sample of each vendor is. Alert WearablesDataStale fires above 12 hours.",
                   ("time() - max by (provider) (wearables_daily_newest_sample_timestamp_seconds)", "{{provider}}"),
                   unit="s"),
        timeseries("Raw pages normalized / h by vendor",
                   "Vendor pages reaching the worker. Zero for hours means no data from that vendor "
                   "(alert WearablesNoDataFromProvider).",
                   ("sum by (provider) (rate(wearables_normalize_pages_total[1h])) * 3600", "{{provider}}")),
    ])
    devices = Section("Device compliance", [
        bars("Hours since the last sync",
             "How many participants last synced their device within each number of hours (cumulative: "
             "'24' counts everyone who synced in the last day).",
             ("sum by (le) (wearables_device_hours_since_sync_participants_bucket)", "{{le}} h"), buckets=True),
        timeseries("Hours since the last sync (median, 90th percentile)",
                   "Half of the participants synced more recently than the median; one in ten synced longer "
                   "ago than the 90th percentile.",
                   ("histogram_quantile(0.5, sum by (le) (wearables_device_hours_since_sync_participants_bucket))",
                    "median"),
                   ("histogram_quantile(0.9, sum by (le) (wearables_device_hours_since_sync_participants_bucket))",
                    "90th percentile"), unit="h"),
        bars("Battery level at the last sync",
             "How many participants' devices reported each battery level or less at their last sync "
             "(cumulative, percent).",
             ("sum by (le) (wearables_device_battery_level_participants_bucket)", "≤ {{le}} %"), buckets=True),
        stat("Devices seen and battery unknown",
             "Participants whose device sync the sink has seen since it started, and those whose device "
             "reported no battery level.",
             ("sum(wearables_device_participants)", "with a sync"),
             ("sum(wearables_device_battery_unknown_participants)", "battery unknown")),
    ])
    return _dashboard("wearables-cohort", "Wearables: cohort completeness and device compliance",
                      "Valid-day share, participants without data, freshness per vendor, battery and sync age.",
                      [completeness, freshness, devices])


# --------------------------------------------------------------------------- (d) participants
def participants() -> Dashboard:
    linking = Section("Linking", [
        bars("Linking funnel (time range)",
             "Over the selected time range: portal pages on the way to a link (invitation, link page, "
             "callback), then links by outcome. A drop between two steps shows where participants stop.",
             ("sum by (page) (increase(wearables_portal_pages_total{page=~\"invitation|link|link_start|"
              "link_callback\",status=~\"2..|3..\"}[$__range]))", "portal {{page}}"),
             ("sum by (outcome) (increase(wearables_connector_links_total[$__range]))", "link {{outcome}}")),
        timeseries("Links / h by outcome",
                   "Vendor links completed, refused or changed to another API generation, by vendor.",
                   ("sum by (provider, outcome) (increase(wearables_connector_links_total[1h]))",
                    "{{provider}} {{outcome}}")),
        timeseries("Participants linked by status and API generation",
                   "Participants per vendor, by link status (linked, revoked, withdrawn) and the vendor API "
                   "generation they consented to.",
                   ("sum by (provider, status, api_generation) (wearables_participants_linked)",
                    "{{provider}} {{status}} {{api_generation}}")),
        timeseries("Link refusals at the portal / h",
                   "Links the portal did not start, by reason (for example the vendor's daily grant budget).",
                   ("sum by (reason) (increase(wearables_portal_link_refusals_total[1h]))", "{{reason}}")),
    ])
    leaving = Section("Revocations, unlinks and withdrawals", [
        timeseries("Revocations / h",
                   "Grants the vendor reported revoked (on a token refresh or a data call), and revocations "
                   "we asked for that the vendor did not confirm.",
                   ("sum by (provider) (increase(wearables_connector_token_refreshes_total{outcome=\"revoked\"}[1h]))",
                    "refresh refused {{provider}}"),
                   ("sum by (provider) (increase(wearables_connector_requests_total{outcome=\"revoked\"}[1h]))",
                    "call refused {{provider}}"),
                   ("sum(increase(wearables_vendor_revoke_failures_total[1h]))", "revoke not confirmed")),
        timeseries("Unlinks / h by outcome",
                   "Links ended by the participant or staff.",
                   ("sum by (outcome) (increase(wearables_participant_unlinks_total[1h]))", "{{outcome}}")),
        timeseries("Withdrawals / day by actor and purge",
                   "Participants who left the study, who asked (participant or staff) and whether their data "
                   "was purged.",
                   ("sum by (actor, purge) (increase(wearables_participant_withdrawals_total[1d]))",
                    "{{actor}} purge={{purge}}")),
    ])
    portal = Section("Portal", [
        timeseries("Portal pages / s by page and status",
                   "Pages the participant portal served, by page and HTTP status. 4xx and 5xx are errors "
                   "participants saw.",
                   _q("wearables_portal_pages_total", "page, status", "{{page}} {{status}}"), unit="reqps"),
        timeseries("Portal errors / s",
                   "Portal pages answered with a server error (5xx).",
                   ("sum by (page) (rate(wearables_portal_pages_total{status=~\"5..\"}[5m]))", "{{page}}"),
                   unit="reqps"),
    ])
    return _dashboard("wearables-participants", "Wearables: participants and linking",
                      "The linking funnel, linked participants, revocations, unlinks, withdrawals and the portal.",
                      [linking, leaving, portal])


#: file name -> dashboard factory
DASHBOARDS = {
    "pipeline.json": pipeline,
    "vendor_api.json": vendor_api,
    "cohort.json": cohort,
    "participants.json": participants,
}


def render(dashboard: Dashboard) -> str:
    """The dashboard as stable JSON text (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(dashboard.to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"


def build_all() -> dict[str, str]:
    """File name -> rendered JSON of every dashboard."""
    return {name: render(factory()) for name, factory in DASHBOARDS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a file differs")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="directory of the JSON files")
    args = parser.parse_args(argv)
    rendered = build_all()
    stale = sorted(p.name for p in args.out.glob("*.json") if p.name not in rendered)
    differ = [name for name, text in rendered.items()
              if not (args.out / name).exists() or (args.out / name).read_text(encoding="utf-8") != text]
    if args.check:
        for name in differ:
            print(f"{args.out / name}: differs from what grafana/build.py renders", file=sys.stderr)
        for name in stale:
            print(f"{args.out / name}: not built by grafana/build.py (remove it)", file=sys.stderr)
        if differ or stale:
            print("run: python -m grafana.build", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (args.out / name).write_text(text, encoding="utf-8")
    for name in stale:
        (args.out / name).unlink()
    print(f"wrote {len(rendered)} dashboards to {args.out}" + (f", removed {', '.join(stale)}" if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
