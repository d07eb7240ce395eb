"""The vendors' state: accounts made on first consent, single-use refresh tokens, revocation,
fixed-window quotas, and devices that catch up and re-send a day at most twice."""

from __future__ import annotations

from connectors.simulator.cohort import SyntheticCohort
from connectors.simulator.world import World
from models.providers import Provider


def test_accounts_tokens_and_revocation() -> None:
    world = World(SyntheticCohort(2, seed=1), days=3, late_share=0.0)
    person = world.cohort.participant_ids[0]
    fitbit = world.account(Provider.FITBIT, person)
    assert world.account(Provider.FITBIT, person) is fitbit and len(fitbit.user_id) == 6
    google = world.account(Provider.GOOGLE_HEALTH, person)
    assert google.legacy_user_id == fitbit.user_id != google.user_id  # Google keeps the old Fitbit id
    access, refresh, lifetime = world.issue_tokens(fitbit, "activity")
    assert lifetime == 28800 and world.issue_tokens(google, "s")[2] == 3600
    grant = world.use_refresh(refresh)
    assert grant is not None and grant.account is fitbit and world.use_refresh(refresh) is None  # single use
    world.revoke(fitbit)
    assert fitbit.revoked and access not in world.access
    assert all(g.account is not fitbit for g in [*world.access.values(), *world.refresh.values()])


def test_quota_windows() -> None:
    world = World(SyntheticCohort(1), days=1)
    quota, hour = world.quota, 3600 * 500_000
    for n in range(150):
        assert quota.take(Provider.FITBIT, "u", hour + n)[0]
    allowed, limit, reset, remaining = quota.take(Provider.FITBIT, "u", hour + 200)
    assert (allowed, limit, reset, remaining) == (False, 150, 3400, 0)
    assert quota.take(Provider.FITBIT, "u", hour + 3600)[0]  # the next clock hour
    quota.google_project_per_minute = 2
    assert quota.take(Provider.GOOGLE_HEALTH, "a", 60.0)[0] and quota.take(Provider.GOOGLE_HEALTH, "b", 61.0)[0]
    assert not quota.take(Provider.GOOGLE_HEALTH, "c", 62.0)[0]  # the project's budget, whoever asks


def test_late_devices_catch_up_and_resyncs_are_capped() -> None:
    world = World(SyntheticCohort(20, seed=4), days=5, late_share=1.0, duplicate_share=1.0)
    accounts = [world.account(Provider.FITBIT, p) for p in world.cohort.participant_ids]
    assert world.sync_tick() == []  # nobody subscribed: nobody would hear of it
    for account in accounts:
        account.subscribed = True
    assert not world.fully_synced()
    for _ in range(60):
        world.sync_tick()
    assert world.fully_synced() and all(a.resyncs == 2 for a in accounts)
    assert world.stats["burst_syncs"] == 20 and world.stats["duplicate_syncs"] == 40
    assert world.visible_minutes(accounts[0], world.last_day) == 1440
    assert world.visible_minutes(accounts[0], world.first_day.replace(year=2000)) == 0
