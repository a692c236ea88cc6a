"""Which variation of an A/B experiment a visitor sees, decided as the SDKs' ``get_variation`` does.

The order (Python SDK 5.x ``DecisionService.get_variation``, and the other SDKs alike):

1. the experiment's status must be ``"Running"``;
2. the datafile whitelist ``forcedVariations`` (user id -> variation key) wins over everything
   else, audiences and traffic included; an unknown variation key is ignored;
3. the audience gate (``audienceConditions``, else ``audienceIds``) must say yes;
4. the bucketing id is ``$opt_bucketing_id`` when it is a string attribute, else the user id;
5. mutual-exclusion group, then traffic allocation (`liftlog.rules.bucketing.bucket`).

What the SDK keeps in process memory (``set_forced_variation``, a user profile service for sticky
bucketing) is state, not a rule, and is left to callers. Contextual bandits (experiments with
``cmab``) are decided by a remote service and are reported as `Reason.CMAB_UNSUPPORTED`. Flag
decisions (``decide``: holdouts, rollouts, the "everyone else" variation that feature-rollout
experiments borrow) are not modelled here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from msgspec import UnsetType

from liftlog.rules.audience import (
    AudienceTree,
    ConditionTree,
    audiences_by_id,
    experiment_audiences,
    user_in_audiences,
)
from liftlog.rules.bucketing import Reason, bucket, bucketing_id, variation_by_key
from liftlog.wire.datafile import Datafile, Experiment, Group, Variation

RUNNING = "Running"


@dataclass(frozen=True, slots=True)
class Decision:
    experiment: Experiment
    variation: Variation | None
    reason: Reason
    #: The variation-step bucket in [0, 10000), when bucketing got that far.
    bucket: int | None = None


class DatafileIndex:
    """The lookups a decision needs, built once per datafile revision.

    Experiments come from ``experiments``, rollout rules and group members, in the SDK's
    precedence: a later definition of the same id replaces an earlier one, and of two experiments
    with the same key the one indexed last wins. Do not mutate the datafile after indexing it.
    """

    def __init__(self, datafile: Datafile) -> None:
        self.datafile = datafile
        by_id: dict[str, Experiment] = {exp.id: exp for exp in datafile.experiments}
        for rollout in {rollout.id: rollout for rollout in datafile.rollouts}.values():
            by_id.update((rule.id, rule) for rule in rollout.experiments)
        self.group_of: dict[str, Group] = {}
        for group in {group.id: group for group in datafile.groups}.values():
            for member in group.experiments:
                by_id[member.id] = member
                self.group_of[member.id] = group
        self.experiments_by_id = by_id
        self.experiments_by_key = {exp.key: exp for exp in by_id.values()}
        self.audiences: dict[str, ConditionTree] = audiences_by_id(
            datafile.audiences, datafile.typed_audiences
        )
        self.gates: dict[str, AudienceTree | None] = {
            exp.id: experiment_audiences(exp.audience_conditions, exp.audience_ids)
            for exp in by_id.values()
        }

    def experiment(self, key: str) -> Experiment:
        """The experiment with this key; raises `KeyError` when the datafile has none."""
        return self.experiments_by_key[key]


def variation_for(
    index: DatafileIndex,
    experiment_key: str,
    user_id: str,
    attributes: Mapping[str, object] | None = None,
    segments: Collection[str] = (),
) -> Decision:
    """The visitor's variation (or None) in an experiment, with the reason.

    ``segments`` are the visitor's qualified ODP segments, for ``qualified`` audience conditions.
    Raises `KeyError` for an experiment key the datafile does not define.
    """
    experiment = index.experiment(experiment_key)
    attributes = attributes or {}
    if experiment.status != RUNNING:
        return Decision(experiment, None, Reason.NOT_RUNNING)
    forced_key = experiment.forced_variations.get(user_id)
    if forced_key is not None:
        forced = variation_by_key(experiment, forced_key)
        if forced is not None:
            return Decision(experiment, forced, Reason.FORCED)
    if not user_in_audiences(index.gates[experiment.id], index.audiences, attributes, segments):
        return Decision(experiment, None, Reason.AUDIENCE_MISMATCH)
    if not isinstance(experiment.cmab, UnsetType):
        return Decision(experiment, None, Reason.CMAB_UNSUPPORTED)
    group = index.group_of.get(experiment.id)
    result = bucket(experiment, bucketing_id(user_id, attributes), group)
    return Decision(experiment, result.variation, result.reason, result.bucket)
