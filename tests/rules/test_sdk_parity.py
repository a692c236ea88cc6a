"""liftlog's decisions equal the official Python SDK's ``get_variation`` for many visitors."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from liftlog.rules.bucketing import Reason
from liftlog.rules.decision import DatafileIndex, variation_for
from liftlog.wire.datafile import decode_datafile

from .conftest import SdkFactory, read_datafile

USERS = 10_000
EXPERIMENTS = [
    "checkout_button",  # 50/50, whitelist with a valid and an unknown variation key
    "pricing_page",  # uneven weights, a "" hole and unallocated traffic past 9500
    "targeted_offer",  # audienceConditions over legacy and typed audiences
    "paused_test",  # not running, even for whitelisted users
    "ids_only",  # audienceIds only: implicit OR with an unknown audience id
    "group_headline",  # mutual-exclusion group (random policy) with a hole
    "group_hero_image",
    "overlap_one",  # group with a non-random policy: no group step
    "targeted_delivery",  # a rollout rule, reachable by key like any experiment
]


def _visitor(rng: random.Random, number: int) -> tuple[str, dict[str, object]]:
    """A visitor id and attributes that exercise every branch the fixture's audiences test."""
    user_id = rng.choice(["qa_user", "ghost_user"]) if number % 97 == 0 else f"user-{number}"
    attributes: dict[str, object] = {}
    country = rng.choice(["US", "CA", "FR", None, "missing", 1])
    if country != "missing":
        attributes["country"] = country
    age = rng.choice([17, 18, 18.5, 65, "30", True, None, 2**53 + 1, "missing"])
    if age != "missing":
        attributes["age"] = age
    version = rng.choice(["2.0", "2.1.3", "1.9.9", "2.0.0-rc.1", "0.9", "1.0.0-alpha", "bad", 2])
    attributes["app_version"] = version
    attributes["plan"] = rng.choice(["free", "free-trial", "pro", 3])
    if number % 7 == 0:
        attributes["$opt_bucketing_id"] = f"household-{number // 21}"
    elif number % 11 == 0:
        attributes["$opt_bucketing_id"] = number  # not a string: ignored
    return user_id, attributes


def test_decision_equals_official_sdk_for_10000_visitors(sdk_client: SdkFactory) -> None:
    text = read_datafile("ab_tests.json")
    client = sdk_client(text)
    index = DatafileIndex(decode_datafile(text))
    rng = random.Random(20240601)
    mismatches = []
    reasons: Counter[Reason] = Counter()
    for number in range(USERS):
        user_id, attributes = _visitor(rng, number)
        for key in EXPERIMENTS:
            expected = client.get_variation(key, user_id, attributes)
            decision = variation_for(index, key, user_id, attributes)
            actual = decision.variation.key if decision.variation else None
            reasons[decision.reason] += 1
            if actual != expected:
                mismatches.append((key, user_id, attributes, expected, actual, decision.reason))
    assert mismatches[:5] == []
    # The comparison is only worth something if every path was taken, many times.
    taken = {reason for reason, count in reasons.items() if count >= 20}
    assert taken >= set(Reason) - {Reason.INVALID_EXPERIMENT_KEY, Reason.CMAB_UNSUPPORTED}


def test_uneven_weights_split_traffic_in_proportion() -> None:
    index = DatafileIndex(decode_datafile(read_datafile("ab_tests.json")))
    counts = Counter(
        (decision.variation.key if decision.variation else None)
        for decision in (variation_for(index, "pricing_page", f"u{n}") for n in range(20_000))
    )
    # Ranges: 10% list_price, 30% discount_10, 10% hole, 45% discount_20, 5% unallocated.
    expected = {"list_price": 0.10, "discount_10": 0.30, "discount_20": 0.45, None: 0.15}
    for key, share in expected.items():
        assert counts[key] / 20_000 == pytest.approx(share, abs=0.015), key


def test_group_members_never_share_a_visitor() -> None:
    index = DatafileIndex(decode_datafile(read_datafile("ab_tests.json")))
    both = 0
    either = 0
    for n in range(5_000):
        a = variation_for(index, "group_headline", f"u{n}").variation
        b = variation_for(index, "group_hero_image", f"u{n}").variation
        both += a is not None and b is not None
        either += a is not None or b is not None
    assert both == 0
    # 40% + 50% of the group's traffic is allocated to its two experiments.
    assert either / 5_000 == pytest.approx(0.9, abs=0.02)
