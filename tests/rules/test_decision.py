"""The decision order of `variation_for`, one rule at a time, on the JSON fixture."""

from __future__ import annotations

import msgspec
import pytest

from liftlog.rules.bucketing import Reason
from liftlog.rules.decision import DatafileIndex, variation_for
from liftlog.wire.datafile import Cmab, decode_datafile

from .conftest import read_datafile

NORTH_AMERICAN_ADULT = {"country": "US", "age": 30, "app_version": "2.1"}


@pytest.fixture(scope="module")
def index() -> DatafileIndex:
    return DatafileIndex(decode_datafile(read_datafile("ab_tests.json")))


def _key(index: DatafileIndex, experiment: str, user: str, attrs: dict[str, object]) -> str | None:
    variation = variation_for(index, experiment, user, attrs).variation
    return variation.key if variation else None


def test_not_running_wins_over_whitelist(index: DatafileIndex) -> None:
    decision = variation_for(index, "paused_test", "qa_user")
    assert (decision.variation, decision.reason) == (None, Reason.NOT_RUNNING)


def test_whitelist_ignores_audiences(index: DatafileIndex) -> None:
    decision = variation_for(index, "targeted_offer", "qa_user", {"country": "FR"})
    assert decision.variation is not None and decision.variation.key == "offer_b"
    assert decision.reason == Reason.FORCED


def test_whitelist_with_unknown_variation_key_falls_through(index: DatafileIndex) -> None:
    decision = variation_for(index, "checkout_button", "ghost_user")
    assert decision.reason == Reason.BUCKETED


def test_audience_gate_and_unknown_attributes(index: DatafileIndex) -> None:
    # ["and", NorthAmerica, ["or", AdultsOnApp2, ["not", FreePlan]]]
    assert variation_for(index, "targeted_offer", "u1", {"country": "FR"}).reason == (
        Reason.AUDIENCE_MISMATCH
    )
    assert variation_for(index, "targeted_offer", "u1", NORTH_AMERICAN_ADULT).reason == (
        Reason.BUCKETED
    )
    # A minor on the free plan: the "or" is False, so the gate is closed.
    minor = {"country": "CA", "age": 15, "app_version": "2.1", "plan": "free"}
    assert variation_for(index, "targeted_offer", "u1", minor).variation is None
    # Without a plan attribute, "not FreePlan" is unknown: unknown means no.
    assert variation_for(index, "targeted_offer", "u1", {"country": "US"}).variation is None


def test_bucketing_id_attribute_moves_visitors_together(index: DatafileIndex) -> None:
    household = {"$opt_bucketing_id": "house-9"}
    keys = {_key(index, "group_hero_image", f"member-{n}", household) for n in range(30)}
    assert len(keys) == 1
    alone = {_key(index, "group_hero_image", f"member-{n}", {}) for n in range(30)}
    assert len(alone) > 1


def test_unknown_experiment_key_raises(index: DatafileIndex) -> None:
    with pytest.raises(KeyError):
        variation_for(index, "no_such_experiment", "u1")


def test_rollout_rules_and_group_members_are_indexed(index: DatafileIndex) -> None:
    assert index.experiment("targeted_delivery").id == "91001"
    assert index.group_of["41001"].id == "19228"
    assert "40001" not in index.group_of


def test_cmab_experiments_are_reported_not_bucketed() -> None:
    datafile = decode_datafile(read_datafile("ab_tests.json"))
    experiment = datafile.experiments[0]
    experiment = msgspec.structs.replace(
        experiment, cmab=Cmab(attribute_ids=["111094"], traffic_allocation=10000)
    )
    cmab_index = DatafileIndex(
        msgspec.structs.replace(datafile, experiments=[experiment, *datafile.experiments[1:]])
    )
    decision = variation_for(cmab_index, experiment.key, "u1")
    assert (decision.variation, decision.reason) == (None, Reason.CMAB_UNSUPPORTED)
