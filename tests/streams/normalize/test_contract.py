"""Both normalizers through the same checks: the same physical day, as each vendor renders it,
gives the same samples (UTC time, value) and the same local dates."""

from __future__ import annotations

from datetime import date

import pytest

from connectors.simulator.cohort import SyntheticCohort
from models.providers import Provider
from models.raw import RawPage
from models.samples import Metric
from streams.normalize import normalize
from tests.builders import SECRET

COHORT = SyntheticCohort(3, seed=11)
DAY = date(2026, 11, 1)  # a fall-back day in most of the cohort's zones


def _pages(provider: Provider, participant: str) -> dict[Metric, RawPage]:
    zone = COHORT.timezone(participant)
    if provider is Provider.FITBIT:
        bodies = {Metric.STEPS: ("activities-steps-intraday", COHORT.fitbit_steps_intraday(participant, DAY)),
                  Metric.HEART_RATE: ("activities-heart-intraday", COHORT.fitbit_heart_intraday(participant, DAY))}
    else:
        bodies = {Metric.STEPS: ("steps", COHORT.google_steps(participant, DAY)),
                  Metric.HEART_RATE: ("heart-rate", COHORT.google_heart_rate(participant, DAY))}
    return {metric: RawPage(provider=provider, data_type=data_type, date=DAY.isoformat(), body=body, timezone=zone)
            for metric, (data_type, body) in bodies.items()}


@pytest.fixture(params=list(Provider), ids=lambda p: p.value)
def provider(request: pytest.FixtureRequest) -> Provider:
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize("participant", COHORT.participant_ids)
@pytest.mark.parametrize("metric", [Metric.STEPS, Metric.HEART_RATE])
def test_every_sample_is_accounted_for_and_ordered(provider: Provider, participant: str, metric: Metric) -> None:
    result = normalize(_pages(provider, participant)[metric], "R1", secret=SECRET)
    assert result.samples + result.rejected == result.input_samples
    for batch in result.batches:
        assert batch.timestamps == sorted(batch.timestamps)
        assert batch.local_date == DAY.isoformat()


@pytest.mark.parametrize("participant", COHORT.participant_ids)
@pytest.mark.parametrize("metric", [Metric.STEPS, Metric.HEART_RATE])
def test_both_vendors_give_the_same_samples(participant: str, metric: Metric) -> None:
    def samples(provider: Provider) -> set[tuple[int, float]]:
        result = normalize(_pages(provider, participant)[metric], "R1", secret=SECRET)
        pairs = {(t, v) for b in result.batches if b.metric is metric
                 for t, v in zip(b.timestamps, b.values, strict=True)}
        # Google lists only minutes with steps; Fitbit lists every minute.
        return {p for p in pairs if metric is not Metric.STEPS or p[1] > 0}

    fitbit, google = samples(Provider.FITBIT), samples(Provider.GOOGLE_HEALTH)
    assert fitbit == google and len(fitbit) > 300
