"""The vendors' state: accounts made on first consent, single-use refresh tokens, revocation,
fixed-window quotas, devices that catch up and re-send a day at most twice, who hears of it
under each Google subscription policy, and samples withdrawn and restored at the vendor."""

from __future__ import annotations

import pytest

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


def test_who_hears_of_a_sync_follows_the_subscription_policy() -> None:
    for policy, heard in (("automatic", True), ("manual", False)):
        world = World(SyntheticCohort(2, seed=4), days=2, late_share=1.0, duplicate_share=0.0,
                      subscription_policy=policy)  # type: ignore[arg-type]
        google, fitbit = (world.account(p, world.cohort.participant_ids[0])
                          for p in (Provider.GOOGLE_HEALTH, Provider.FITBIT))
        assert world.notifies(google) is heard and not world.notifies(fitbit)  # Fitbit: only once subscribed
        changed = [account for _ in range(40) for account, _ in world.sync_tick()]
        assert changed == ([google] if heard else [])
        google.subscribed = fitbit.subscribed = True
        assert world.notifies(google) and world.notifies(fitbit)
        world.revoke(google)
        assert not world.notifies(google)  # a revoked grant hears of nothing, whatever the policy


def test_withdrawn_samples_are_kept_and_announced_once() -> None:
    world = World(SyntheticCohort(1, seed=2), days=1)
    person = world.cohort.participant_ids[0]
    google, fitbit = world.account(Provider.GOOGLE_HEALTH, person), world.account(Provider.FITBIT, person)
    world.delete_samples(google, "steps", 100.0, 200.0)
    world.delete_samples(google, "steps", 300.0, 400.0)
    world.delete_samples(fitbit, "steps", 100.0, 200.0)  # recorded, but Fitbit sends no deletion notification
    assert world.deleted(person, "steps") == [(100.0, 200.0), (300.0, 400.0), (100.0, 200.0)]
    assert world.deleted(person, "sleep") == []
    assert not world.restore_samples(google, "steps", 100.0, 250.0)  # only an interval that was deleted
    assert world.restore_samples(google, "steps", 300.0, 400.0)
    changes = world.take_changes()
    assert [(c.account, c.operation, c.data_type, c.start, c.end) for c in changes] == [
        (google, "DELETE", "steps", 100.0, 200.0), (google, "DELETE", "steps", 300.0, 400.0),
        (google, "UPSERT", "steps", 300.0, 400.0)]
    assert world.take_changes() == []
    assert world.stats["deletions"] == 3 and world.stats["restorations"] == 1
    assert world.find_account(Provider.GOOGLE_HEALTH, person) is google
    assert world.find_account(Provider.GOOGLE_HEALTH, "nobody") is None
    with pytest.raises(ValueError, match="end after it starts"):
        world.delete_samples(google, "steps", 5.0, 5.0)
