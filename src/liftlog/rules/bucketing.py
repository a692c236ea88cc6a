"""Optimizely's deterministic bucketing: the same visitor lands in the same variation everywhere.

A visitor's bucket for a parent entity (an experiment, or a mutual-exclusion group) is

    floor(murmur3_x86_32(bucketing_id + parent_id, seed=1) / 2**32 * 10000)      in [0, 10000)

over the UTF-8 bytes of the concatenation, with no separator. A traffic allocation is a list of
cumulative, exclusive range ends; the first entry whose ``end_of_range`` exceeds the bucket wins.
An ``entity_id`` of ``""``, an id the experiment does not define, or a bucket past the last range
end means "no variation" (traffic that is not in the experiment).

In a group with policy ``"random"``, a first hash over the *group* id picks at most one
experiment; a visitor is bucketed into an experiment's variations only if the group picked that
experiment. Any other policy buckets each member independently, as the SDKs do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import mmh3

from liftlog.wire.datafile import Experiment, Group, TrafficAllocation, Variation

MAX_TRAFFIC_VALUE = 10_000
HASH_SEED = 1
#: A string attribute with this key replaces the user id as the bucketing key, so that visitors
#: sharing it (a household, a device) share variations.
BUCKETING_ID_ATTRIBUTE = "$opt_bucketing_id"
GROUP_POLICY_RANDOM = "random"


class Reason(StrEnum):
    """Why a visitor got (or did not get) a variation; shown by the event debugger."""

    BUCKETED = "bucketed"
    FORCED = "forced_variation"
    NOT_RUNNING = "experiment_not_running"
    AUDIENCE_MISMATCH = "audience_mismatch"
    GROUP_EMPTY_RANGE = "group_empty_range"
    GROUP_OTHER_EXPERIMENT = "group_other_experiment"
    EMPTY_RANGE = "empty_range"
    INVALID_EXPERIMENT_KEY = "invalid_experiment_key"
    #: Contextual bandits are decided by a remote prediction service, not by hashing.
    CMAB_UNSUPPORTED = "cmab_unsupported"


@dataclass(frozen=True, slots=True)
class Bucketing:
    """The outcome of `bucket`: ``bucket`` is the variation-step value when that step ran."""

    variation: Variation | None
    reason: Reason
    bucket: int | None = None


def hash_key(key: str) -> int:
    """Unsigned MurmurHash3 x86 32-bit, seed 1, of the key's UTF-8 bytes."""
    return int(mmh3.hash(key, HASH_SEED, signed=False))


def bucket_value(bucketing_id: str, parent_id: str) -> int:
    """The visitor's bucket in [0, 10000) for an experiment or group id.

    Integer arithmetic gives the SDK's ``floor(float(h) / 2**32 * 10000)`` exactly: ``h * 10000``
    is below 2**46, so the SDK's double never rounds.
    """
    return hash_key(bucketing_id + parent_id) * MAX_TRAFFIC_VALUE >> 32


def find_bucket(
    bucketing_id: str, parent_id: str, allocations: Sequence[TrafficAllocation]
) -> str | None:
    """The ``entity_id`` of the first range holding the bucket (``""`` is a hole), or None."""
    return _entity_at(bucket_value(bucketing_id, parent_id), allocations)


def _entity_at(value: int, allocations: Sequence[TrafficAllocation]) -> str | None:
    for allocation in allocations:
        if value < allocation.end_of_range:
            return allocation.entity_id
    return None


def bucketing_id(user_id: str, attributes: Mapping[str, object] | None = None) -> str:
    """``$opt_bucketing_id`` when it is a string attribute, else the user id."""
    override = (attributes or {}).get(BUCKETING_ID_ATTRIBUTE)
    return override if isinstance(override, str) else user_id


def variation_by_id(experiment: Experiment, variation_id: str) -> Variation | None:
    # The last definition wins, as in the SDK's id map.
    for variation in reversed(experiment.variations):
        if variation.id == variation_id:
            return variation
    return None


def variation_by_key(experiment: Experiment, variation_key: str) -> Variation | None:
    for variation in reversed(experiment.variations):
        if variation.key == variation_key:
            return variation
    return None


def bucket(experiment: Experiment, bucketing_id: str, group: Group | None = None) -> Bucketing:
    """Hash a visitor into one of the experiment's variations (no status or audience check).

    ``group`` is the group the experiment belongs to, if any; it matters only with policy
    ``"random"``.
    """
    if not experiment.key.strip():
        return Bucketing(None, Reason.INVALID_EXPERIMENT_KEY)
    if group is not None and group.policy == GROUP_POLICY_RANDOM:
        chosen = find_bucket(bucketing_id, group.id, group.traffic_allocation)
        if not chosen:
            return Bucketing(None, Reason.GROUP_EMPTY_RANGE)
        if chosen != experiment.id:
            return Bucketing(None, Reason.GROUP_OTHER_EXPERIMENT)
    value = bucket_value(bucketing_id, experiment.id)
    variation_id = _entity_at(value, experiment.traffic_allocation)
    variation = variation_by_id(experiment, variation_id) if variation_id else None
    if variation is None:
        return Bucketing(None, Reason.EMPTY_RANGE, value)
    return Bucketing(variation, Reason.BUCKETED, value)
