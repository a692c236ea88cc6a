"""The datafile Structs: wire names, round trips, and acceptance by the official SDK."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from optimizely.helpers import validator

from liftlog.errors import InvalidInput
from liftlog.rules.decision import DatafileIndex, variation_for
from liftlog.wire.datafile import (
    Attribute,
    Audience,
    Datafile,
    Event,
    Experiment,
    FeatureFlag,
    Group,
    Integration,
    Rollout,
    TrafficAllocation,
    TypedAudience,
    Variable,
    VariableUsage,
    Variation,
    decode_datafile,
    encode_datafile,
)

from .conftest import SdkFactory, read_datafile


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in _keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in _keys(item)}
    return set()


def _built() -> Datafile:
    """A datafile as a catalog would build it: Structs only, defaults where the SDK allows."""
    on = Variation(
        id="61", key="on", feature_enabled=True, variables=[VariableUsage(id="71", value="5")]
    )
    return Datafile(
        account_id="1",
        project_id="2",
        revision="3",
        sdk_key="key",
        anonymize_ip=True,
        bot_filtering=True,
        attributes=[Attribute(id="11", key="country")],
        audiences=[
            Audience(
                id="21",
                name="US",
                conditions=json.dumps(
                    ["or", {"name": "country", "type": "custom_attribute", "value": "US"}]
                ),
            )
        ],
        typed_audiences=[
            TypedAudience(
                id="22",
                name="CA",
                conditions=["or", {"name": "country", "type": "custom_attribute", "value": "CA"}],
            )
        ],
        events=[Event(id="31", key="purchase", experiment_ids=["41"])],
        experiments=[
            Experiment(
                id="41",
                key="exp",
                layer_id="51",
                status="Running",
                audience_ids=["21", "22"],
                variations=[Variation(id="60", key="off"), on],
                traffic_allocation=[
                    TrafficAllocation(entity_id="60", end_of_range=5000),
                    TrafficAllocation(entity_id="61", end_of_range=10000),
                ],
            )
        ],
        groups=[Group(id="81", policy="random", experiments=[], traffic_allocation=[])],
        feature_flags=[
            FeatureFlag(
                id="91",
                key="flag",
                experiment_ids=["41"],
                rollout_id="101",
                variables=[Variable(id="71", key="size", type="integer", default_value="1")],
            )
        ],
        rollouts=[Rollout(id="101", experiments=[])],
        integrations=[Integration(key="odp", host="https://odp.example")],
    )


def test_wire_names_are_camel_case_and_python_names_snake_case() -> None:
    encoded = json.loads(encode_datafile(_built()))
    keys = _keys(encoded)
    assert {
        "accountId",
        "anonymizeIP",
        "typedAudiences",
        "layerId",
        "trafficAllocation",
        "endOfRange",
        "entityId",
        "forcedVariations",
        "audienceIds",
        "experimentIds",
        "featureFlags",
        "rolloutId",
        "defaultValue",
        "featureEnabled",
        "botFiltering",
    } <= keys
    assert not [key for key in keys if "_" in key]
    assert not hasattr(_built(), "accountId")


def test_unset_optional_keys_are_left_out() -> None:
    encoded = json.loads(encode_datafile(_built()))
    experiment = encoded["experiments"][0]
    assert "audienceConditions" not in experiment and "cmab" not in experiment
    assert encoded["integrations"] == [{"key": "odp", "host": "https://odp.example"}]
    assert "region" not in encoded and "environmentKey" not in encoded
    # Keys the SDK requires are present even when empty.
    assert experiment["forcedVariations"] == {}
    assert encoded["groups"][0]["experiments"] == []


def test_built_datafile_passes_sdk_schema_and_decides_alike(sdk_client: SdkFactory) -> None:
    text = encode_datafile(_built()).decode()
    assert validator.is_datafile_valid(text)
    client = sdk_client(text)
    index = DatafileIndex(decode_datafile(text))
    for number in range(300):
        attributes = {"country": ["US", "CA", "FR"][number % 3]}
        decision = variation_for(index, "exp", f"u{number}", attributes)
        expected = client.get_variation("exp", f"u{number}", attributes)
        assert (decision.variation.key if decision.variation else None) == expected


def _covers(encoded: Any, original: Any) -> bool:
    """Whether ``encoded`` holds everything ``original`` does (it may add defaulted keys)."""
    if isinstance(original, dict):
        return isinstance(encoded, dict) and all(
            key in encoded and _covers(encoded[key], value) for key, value in original.items()
        )
    if isinstance(original, list):
        return (
            isinstance(encoded, list)
            and len(encoded) == len(original)
            and all(_covers(e, o) for e, o in zip(encoded, original, strict=True))
        )
    return type(encoded) is type(original) and encoded == original


def test_fixture_round_trips() -> None:
    text = read_datafile("ab_tests.json")
    datafile = decode_datafile(text)
    assert decode_datafile(encode_datafile(datafile)) == datafile
    encoded = json.loads(encode_datafile(datafile))
    assert _covers(encoded, json.loads(text))
    # Only defaults are added: the variations' featureEnabled and variables.
    assert encoded["experiments"][0]["variations"][0] == {
        "id": "60001",
        "key": "control",
        "featureEnabled": False,
        "variables": [],
    }


def test_null_audience_conditions_are_accepted() -> None:
    raw = json.loads(read_datafile("ab_tests.json"))
    raw["experiments"][0]["audienceConditions"] = None
    assert decode_datafile(json.dumps(raw)).experiments[0].audience_conditions is None


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (
            lambda d: d["experiments"][1]["trafficAllocation"][2].update(endOfRange="5000"),
            "$.experiments[1].trafficAllocation[2].endOfRange",
        ),
        (lambda d: d.update(accountId=12001), "$.accountId"),
        (lambda d: d["audiences"][0].update(conditions=["or"]), "$.audiences[0].conditions"),
    ],
)
def test_decode_errors_name_the_json_path(mutate: Any, path: str) -> None:
    raw = json.loads(read_datafile("ab_tests.json"))
    mutate(raw)
    with pytest.raises(InvalidInput) as caught:
        decode_datafile(json.dumps(raw))
    assert [detail.path for detail in caught.value.details] == [path]
    assert re.match(r"Expected `\w+`", caught.value.details[0].problem)


def test_decode_rejects_non_json() -> None:
    with pytest.raises(InvalidInput):
        decode_datafile(b"{not json")
