"""Audience rules that the SDK comparison cannot isolate: parsing, precedence, logic laws."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import UNSET

from liftlog.rules.audience import (
    Malformed,
    Operator,
    Tree,
    audience_tree,
    audiences_by_id,
    compare_versions,
    evaluate_tree,
    experiment_audiences,
)
from liftlog.wire.datafile import Audience, TypedAudience


@pytest.mark.parametrize(
    ("target", "user", "order"),
    [
        ("1.2.3", "1.2.3", 0),
        ("1.2.3", "1.2.4", 1),
        ("1.2.3", "1.10.0", 1),
        ("1.2.3", "1.2.2", -1),
        ("2", "2.7.1", 0),
        ("2.0.0", "2.0", -1),
        ("1.2.3", "1.2.3-alpha", -1),
        ("1.2.3-alpha", "1.2.3", 1),
        ("1.2.3-alpha", "1.2.3-beta", 1),
        ("1.2.3-beta", "1.2.3-alpha", -1),
        ("1.2.3+1", "1.2.3", 1),
        ("1.2.3.4", "1.2.3", None),
        ("1.2.3", "1.2. 3", None),
        ("1.2.3", "one.two", None),
        ("1.2-beta", "1.2.3", None),
    ],
)
def test_compare_versions(target: str, user: str, order: int | None) -> None:
    assert compare_versions(target, user) == order


def test_typed_audience_replaces_legacy_with_same_id() -> None:
    legacy = Audience(id="1", name="$$dummy", conditions='{"type": "custom_attribute"}')
    typed = TypedAudience(
        id="1", name="real", conditions={"type": "custom_attribute", "name": "x", "value": 1}
    )
    trees = audiences_by_id([legacy], [typed])
    assert trees == {"1": audience_tree(typed)}


def test_legacy_conditions_that_are_not_json_are_malformed() -> None:
    tree = audience_tree(Audience(id="1", name="bad", conditions="[not json"))
    assert isinstance(tree, Malformed)
    assert evaluate_tree(tree, lambda leaf: True) is None


def test_audience_conditions_take_precedence_over_ids() -> None:
    assert experiment_audiences(["and", "1"], ["2"]) == Operator("and", ("1",))
    assert experiment_audiences([], ["2"]) is None
    assert experiment_audiences(UNSET, ["2", "3"]) == Operator("or", ("2", "3"))
    assert experiment_audiences(None, []) is None
    assert experiment_audiences("7", []) == "7"


VERDICTS = st.sampled_from([True, False, None])


def _trees(leaves: st.SearchStrategy[bool | None]) -> st.SearchStrategy[Tree[bool | None]]:
    return st.recursive(
        leaves,
        lambda children: st.builds(
            Operator,
            st.sampled_from(["and", "or", "not"]),
            st.lists(children, min_size=1, max_size=4).map(tuple),
        ),
        max_leaves=12,
    )


def _identity(verdict: bool | None) -> bool | None:
    return verdict


def _negate(tree: Tree[bool | None]) -> Tree[bool | None]:
    return Operator("not", (tree,))


@given(_trees(VERDICTS))
def test_double_negation_is_identity(tree: Tree[bool | None]) -> None:
    assert evaluate_tree(_negate(_negate(tree)), _identity) is evaluate_tree(tree, _identity)


@given(st.lists(_trees(VERDICTS), min_size=1, max_size=4))
def test_de_morgan_holds_in_three_valued_logic(operands: list[Tree[bool | None]]) -> None:
    negated_and = _negate(Operator("and", tuple(operands)))
    or_of_negations = Operator("or", tuple(_negate(operand) for operand in operands))
    assert evaluate_tree(negated_and, _identity) is evaluate_tree(or_of_negations, _identity)


@given(_trees(VERDICTS))
def test_verdict_is_known_when_every_leaf_is_known(
    tree: Tree[bool | None],
) -> None:
    """Replacing every unknown leaf by False cannot make a known verdict unknown."""
    verdict = evaluate_tree(tree, lambda leaf: False if leaf is None else leaf)
    assert verdict is not None
