"""Audience verdicts equal the official Python SDK's, case by case, in both audience forms.

The SDK only says "variation or not", so each case gets two 100%-traffic experiments: one gated by
the audience, one by ``["not", audience]``. True passes the first, False passes the second, and
unknown (None) passes neither, which recovers the SDK's three-valued verdict.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import pytest
from optimizely import optimizely

from liftlog.rules.audience import audience_tree, evaluate_conditions
from liftlog.rules.decision import DatafileIndex, variation_for
from liftlog.wire.datafile import Audience, Datafile, TypedAudience

from .conftest import SdkFactory

NO_MATCH = object()


def leaf(
    match: object, value: object, name: object = "a", type: object = "custom_attribute"
) -> Any:
    condition: dict[str, object] = {"name": name, "type": type, "value": value}
    if match is not NO_MATCH:
        condition["match"] = match
    return condition


T = leaf("exact", "yes", name="t")
F = leaf("exact", "yes", name="f")
U = leaf("exact", "yes", name="u")  # the attribute is always missing: unknown
TFU = {"t": "yes", "f": "no"}

# (case id, condition tree, attributes, expected verdict)
CASES: list[tuple[str, Any, dict[str, object], bool | None]] = [
    ("exact-str-equal", leaf("exact", "US"), {"a": "US"}, True),
    ("exact-str-case", leaf("exact", "US"), {"a": "us"}, False),
    ("exact-int-float", leaf("exact", 1), {"a": 1.0}, True),
    ("exact-str-vs-int", leaf("exact", "1"), {"a": 1}, None),
    ("exact-int-vs-str", leaf("exact", 1), {"a": "1"}, None),
    ("exact-bool-vs-int", leaf("exact", True), {"a": 1}, None),
    ("exact-int-vs-bool", leaf("exact", 1), {"a": True}, None),
    ("exact-bool-equal", leaf("exact", False), {"a": False}, True),
    ("exact-bool-differ", leaf("exact", True), {"a": False}, False),
    ("exact-user-over-2^53", leaf("exact", 1), {"a": 2**53 + 1}, None),
    ("exact-user-at-2^53", leaf("exact", 2**53), {"a": 2**53}, True),
    ("exact-user-float-over-2^53", leaf("exact", 1), {"a": 9007199254740994.0}, None),
    ("exact-user-under--2^53", leaf("exact", -1), {"a": -(2**53) - 2}, None),
    ("exact-target-over-2^53", leaf("exact", 2**53 + 2), {"a": 1}, None),
    ("exact-user-nan", leaf("exact", 1), {"a": math.nan}, None),
    ("exact-user-inf", leaf("exact", 1), {"a": math.inf}, None),
    ("exact-target-nan", leaf("exact", math.nan), {"a": 1}, None),
    ("exact-target-list", leaf("exact", [1]), {"a": 1}, None),
    ("exact-target-null", leaf("exact", None), {"a": "x"}, None),
    ("exact-user-list", leaf("exact", "x"), {"a": ["x"]}, None),
    ("exact-missing", leaf("exact", "x"), {}, None),
    ("exact-null", leaf("exact", "x"), {"a": None}, None),
    ("no-match-key-means-exact", leaf(NO_MATCH, "x"), {"a": "x"}, True),
    ("null-match-means-exact", leaf(None, "x"), {"a": "y"}, False),
    ("unknown-match", leaf("regex", "x"), {"a": "x"}, None),
    ("unknown-type", leaf("exact", "x", type="browser"), {"a": "x"}, None),
    ("missing-type", leaf("exact", "x", type=None), {"a": "x"}, None),
    ("third-party-dimension", leaf("exact", "x", type="third_party_dimension"), {"a": "x"}, True),
    ("exists-str", leaf("exists", None), {"a": "x"}, True),
    ("exists-missing", leaf("exists", None), {}, False),
    ("exists-null", leaf("exists", None), {"a": None}, False),
    ("exists-false", leaf("exists", None), {"a": False}, True),
    ("exists-zero", leaf("exists", None), {"a": 0}, True),
    ("exists-unknown-type", leaf("exists", None, type="browser"), {"a": 0}, None),
    ("substring-in", leaf("substring", "fre"), {"a": "free"}, True),
    ("substring-out", leaf("substring", "pro"), {"a": "free"}, False),
    ("substring-empty", leaf("substring", ""), {"a": "x"}, True),
    ("substring-user-int", leaf("substring", "1"), {"a": 1}, None),
    ("substring-target-int", leaf("substring", 1), {"a": "1"}, None),
    ("gt-true", leaf("gt", 10), {"a": 11}, True),
    ("gt-equal", leaf("gt", 10), {"a": 10}, False),
    ("ge-equal", leaf("ge", 10), {"a": 10}, True),
    ("lt-float", leaf("lt", 10), {"a": 9.5}, True),
    ("le-int-float", leaf("le", 10), {"a": 10.0}, True),
    ("le-above", leaf("le", 10), {"a": 10.5}, False),
    ("gt-user-bool", leaf("gt", 0), {"a": True}, None),
    ("gt-user-str", leaf("gt", 10), {"a": "11"}, None),
    ("gt-user-over-2^53", leaf("gt", 10), {"a": 2**53 + 1}, None),
    ("gt-user-minus-inf", leaf("ge", 10), {"a": -math.inf}, None),
    ("gt-target-str", leaf("gt", "10"), {"a": 11}, None),
    ("gt-target-bool", leaf("gt", False), {"a": 1}, None),
    ("lt-target-nan", leaf("lt", math.nan), {"a": 1}, None),
    ("gt-at-2^53", leaf("gt", 2**53), {"a": 2**53}, False),
    ("gt-missing", leaf("gt", 1), {}, None),
    ("semver-eq-short-target", leaf("semver_eq", "2.0"), {"a": "2.0.0"}, True),
    ("semver-eq-short-user", leaf("semver_eq", "2.0.0"), {"a": "2.0"}, False),
    ("semver-gt-patch", leaf("semver_gt", "1.2.3"), {"a": "1.2.4"}, True),
    ("semver-numeric-not-lexical", leaf("semver_lt", "1.10"), {"a": "1.9"}, True),
    ("semver-pre-release-below", leaf("semver_lt", "1.2.3"), {"a": "1.2.3-beta"}, True),
    ("semver-release-above-pre", leaf("semver_ge", "1.2.3-beta"), {"a": "1.2.3"}, True),
    ("semver-pre-vs-pre", leaf("semver_gt", "2.0.0-alpha"), {"a": "2.0.0-beta"}, True),
    ("semver-eq-pre-release", leaf("semver_eq", "1.2.3"), {"a": "1.2.3-rc.1"}, False),
    ("semver-major-only", leaf("semver_le", "2"), {"a": "2.9"}, True),
    ("semver-build-target-longer", leaf("semver_lt", "1.2.3+7"), {"a": "1.2"}, False),
    ("semver-build-ignored", leaf("semver_eq", "1.2.3"), {"a": "1.2.3+build.5"}, True),
    ("semver-build-both", leaf("semver_gt", "1.2.3+1"), {"a": "1.2.3+2"}, True),
    ("semver-user-four-parts", leaf("semver_eq", "1.2.3"), {"a": "1.2.3.4"}, None),
    ("semver-user-space", leaf("semver_eq", "1.2.3"), {"a": "1.2 .3"}, None),
    ("semver-user-empty-part", leaf("semver_eq", "1.2.3"), {"a": "1..3"}, None),
    ("semver-user-empty", leaf("semver_ge", "0"), {"a": ""}, None),
    ("semver-user-letters", leaf("semver_ge", "1.0"), {"a": "v1.0"}, None),
    ("semver-target-invalid", leaf("semver_ge", "1.x"), {"a": "1.0"}, None),
    ("semver-user-int", leaf("semver_eq", "1"), {"a": 1}, None),
    ("semver-target-int", leaf("semver_eq", 1), {"a": "1"}, None),
    ("semver-missing", leaf("semver_eq", "1"), {}, None),
    ("qualified-str", leaf("qualified", "vip"), {}, False),
    ("qualified-not-str", leaf("qualified", 5), {}, None),
    ("and-true-unknown", ["and", T, U], TFU, None),
    ("and-false-wins", ["and", T, U, F], TFU, False),
    ("or-false-unknown", ["or", F, U], TFU, None),
    ("or-true-wins", ["or", U, T], TFU, True),
    ("not-unknown", ["not", U], TFU, None),
    ("not-false", ["not", F], TFU, True),
    ("not-empty", ["not"], TFU, None),
    ("not-first-only", ["not", T, F], TFU, False),
    ("implicit-or", [F, T], TFU, True),
    ("and-empty", ["and"], TFU, True),
    ("or-empty", ["or"], TFU, False),
    ("nested", ["and", ["or", F, ["not", F]], ["or", ["or", T]]], TFU, True),
    ("legacy-shape", ["and", ["or", ["or", leaf(NO_MATCH, "US", name="c")]]], {"c": "US"}, True),
]


def _experiment(exp_id: str, gate: Any) -> dict[str, Any]:
    return {
        "id": exp_id,
        "key": f"exp_{exp_id}",
        "layerId": f"9{exp_id}",
        "status": "Running",
        "audienceIds": [],
        "audienceConditions": gate,
        "forcedVariations": {},
        "variations": [{"id": f"8{exp_id}", "key": "in"}],
        "trafficAllocation": [{"entityId": f"8{exp_id}", "endOfRange": 10000}],
    }


def _datafile() -> dict[str, Any]:
    """Per case and form, one audience and the two experiments that read its verdict."""
    audiences, typed, experiments = [], [], []
    for number, (_, tree, _, _) in enumerate(CASES):
        legacy_id, typed_id = f"{1000 + number}", f"{2000 + number}"
        audiences.append({"id": legacy_id, "name": "legacy", "conditions": json.dumps(tree)})
        typed.append({"id": typed_id, "name": "typed", "conditions": tree})
        for audience_id in (legacy_id, typed_id):
            experiments.append(_experiment(f"{audience_id}1", ["or", audience_id]))
            experiments.append(_experiment(f"{audience_id}2", ["not", audience_id]))
    return {
        "version": "4",
        "accountId": "1",
        "projectId": "2",
        "revision": "1",
        "attributes": [],
        "events": [],
        "groups": [],
        "audiences": audiences,
        "typedAudiences": typed,
        "experiments": experiments,
    }


@pytest.fixture(scope="module")
def sides(sdk_client: SdkFactory) -> tuple[optimizely.Optimizely, DatafileIndex]:
    datafile = _datafile()
    # json.dumps writes NaN as a literal the SDK's json.loads reads back, keeping those cases
    # meaningful; msgspec.convert keeps the same Python values for liftlog.
    index = DatafileIndex(msgspec.convert(datafile, Datafile))
    return sdk_client(json.dumps(datafile)), index


def _sdk_verdict(client: optimizely.Optimizely, audience_id: str, attrs: dict[str, object]) -> Any:
    if client.get_variation(f"exp_{audience_id}1", "visitor", attrs) is not None:
        return True
    if client.get_variation(f"exp_{audience_id}2", "visitor", attrs) is not None:
        return False
    return None


def _liftlog_verdict(index: DatafileIndex, audience_id: str, attrs: dict[str, object]) -> Any:
    if variation_for(index, f"exp_{audience_id}1", "visitor", attrs).variation is not None:
        return True
    if variation_for(index, f"exp_{audience_id}2", "visitor", attrs).variation is not None:
        return False
    return None


@pytest.mark.parametrize("form", ["legacy", "typed"])
@pytest.mark.parametrize(
    ("number", "tree", "attributes", "expected"),
    [(number, *case[1:]) for number, case in enumerate(CASES)],
    ids=[case[0] for case in CASES],
)
def test_audience_verdict_equals_official_sdk(
    sides: tuple[optimizely.Optimizely, DatafileIndex],
    form: str,
    number: int,
    tree: Any,
    attributes: dict[str, object],
    expected: bool | None,
) -> None:
    client, index = sides
    audience_id = f"{(1000 if form == 'legacy' else 2000) + number}"
    sdk = _sdk_verdict(client, audience_id, attributes)
    assert sdk is expected, "the table disagrees with the SDK"
    assert _liftlog_verdict(index, audience_id, attributes) is sdk
    direct = (
        Audience(id=audience_id, name="x", conditions=json.dumps(tree))
        if form == "legacy"
        else TypedAudience(id=audience_id, name="x", conditions=tree)
    )
    assert evaluate_conditions(audience_tree(direct), attributes) is sdk


GATES: list[tuple[str, Any]] = [
    ("single-id", "1"),
    ("list-of-one", ["1"]),
    ("and-true-unknown", ["and", "1", "3"]),
    ("or-true-unknown", ["or", "3", "1"]),
    ("not-unknown", ["not", "3"]),
    ("not-missing-audience", ["not", "404"]),
    ("or-missing-then-true", ["or", "404", "1"]),
    ("and-missing", ["and", "404"]),
    ("missing-id-string", "404"),
    ("implicit-or-false-true", ["2", "1"]),
    ("nested", ["and", "1", ["or", "2", ["not", "2"]]]),
    ("and-empty", ["and"]),
    ("or-empty", ["or"]),
    ("everyone", []),
    ("ids-only-or", None),
]


@pytest.fixture(scope="module")
def gate_sides(sdk_client: SdkFactory) -> tuple[optimizely.Optimizely, DatafileIndex]:
    experiments = []
    for number, (_, gate) in enumerate(GATES):
        experiment = _experiment(f"{3000 + number}", gate)
        if gate is None:  # no audienceConditions key: the ids are an implicit OR
            del experiment["audienceConditions"]
            experiment["audienceIds"] = ["2", "404", "1"]
        experiments.append(experiment)
    datafile = {
        "version": "4",
        "accountId": "1",
        "projectId": "2",
        "revision": "1",
        "attributes": [],
        "events": [],
        "groups": [],
        "audiences": [
            {"id": str(number), "name": name, "conditions": json.dumps(tree)}
            for number, name, tree in ((1, "true", T), (2, "false", F), (3, "unknown", U))
        ],
        "experiments": experiments,
    }
    text = json.dumps(datafile)
    return sdk_client(text), DatafileIndex(msgspec.json.decode(text, type=Datafile))


@pytest.mark.parametrize(
    ("number", "gate"), list(enumerate(gate for _, gate in GATES)), ids=[g[0] for g in GATES]
)
def test_experiment_audience_gate_equals_official_sdk(
    gate_sides: tuple[optimizely.Optimizely, DatafileIndex], number: int, gate: Any
) -> None:
    client, index = gate_sides
    key = f"exp_{3000 + number}"
    expected = client.get_variation(key, "visitor", TFU)
    decision = variation_for(index, key, "visitor", TFU)
    assert (decision.variation.key if decision.variation else None) == expected


# Trees the SDK cannot evaluate: it raises from get_variation. liftlog answers "unknown" instead,
# so a bad audience excludes visitors rather than failing the whole decision.
SDK_RAISES: list[tuple[str, Any, dict[str, object], type[Exception]]] = [
    ("semver-core-vs-tag", leaf("semver_eq", "1.2-beta"), {"a": "1.2.3"}, ValueError),
    ("empty-tree", [], {}, IndexError),
    ("empty-subtree", ["and", []], {}, IndexError),
]


@pytest.mark.parametrize(
    ("tree", "attributes", "error"), [c[1:] for c in SDK_RAISES], ids=[c[0] for c in SDK_RAISES]
)
def test_trees_the_sdk_raises_on_are_unknown(
    sdk_client: SdkFactory, tree: Any, attributes: dict[str, object], error: type[Exception]
) -> None:
    datafile = {
        "version": "4",
        "accountId": "1",
        "projectId": "2",
        "revision": "1",
        "attributes": [],
        "events": [],
        "groups": [],
        "audiences": [],
        "typedAudiences": [{"id": "1", "name": "bad", "conditions": tree}],
        "experiments": [_experiment("5", ["or", "1"])],
    }
    with pytest.raises(error):
        sdk_client(datafile).get_variation("exp_5", "visitor", attributes)
    index = DatafileIndex(msgspec.convert(datafile, Datafile))
    assert evaluate_conditions(index.audiences["1"], attributes) is None
    assert variation_for(index, "exp_5", "visitor", attributes).variation is None
