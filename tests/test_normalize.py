"""The batch normaliser against the Python oracle, and its handling of bodies it can't read."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liftlog.errors import InvalidInput
from liftlog.lake import normalize
from liftlog.lake.normalize import V1Records, normalise
from liftlog.lake.schema import SCHEMAS
from liftlog.wire import events
from liftlog.wire.events import TYPED_PREFIX, decode_batch
from liftlog.wire.rows import Meta, Rows
from tests.oracle_rows import add_v1, as_text

ACTIVATION = "campaign_activated"


def simplified_text(value: Any) -> str | None:
    """The oracle's `as_text` with the documented simplification: typed text stays as sent."""
    if isinstance(value, str) and value.startswith(TYPED_PREFIX):
        return value[1:]
    return as_text(value)


def records(bodies: list[bytes]) -> V1Records:
    out = V1Records()
    for i, body in enumerate(bodies):
        meta = Meta(1_700_000_000_000 + i, f"w0:0:{i}", "10.0.0.0", "ua", "https://r.example")
        out.add(meta, body, (True, True, True))
    return out


def oracle(bodies: list[bytes]) -> tuple[Rows, list[str]]:
    """The oracle's rows, and the positions of the bodies `decode_batch` rejects."""
    rows, rejected = Rows(), []
    recs = records(bodies)
    for i, body in enumerate(bodies):
        try:
            batch = decode_batch(body)
        except InvalidInput:
            rejected.append(recs.position[i])
            continue
        add_v1(rows, batch, recs.meta(i), simplified_text)
    return rows, rejected


def canonical(table: pa.Table) -> list[str]:
    return sorted(json.dumps(r, default=str, sort_keys=True) for r in table.to_pylist())


def same_rows(bodies: list[bytes], chunk_bytes: int | None = None) -> Rows:
    """Assert the normaliser's rows equal the oracle's; return its rejects."""
    want, rejected = oracle(bodies)
    rejects = Rows()
    if chunk_bytes is None:
        got = normalise(records(bodies), rejects)
    else:
        got = normalise(records(bodies), rejects, chunk_bytes)
    for name in ("decisions", "conversions"):
        expected = pa.Table.from_pydict(getattr(want, name).as_dict(), schema=SCHEMAS[name])
        assert getattr(got, name).schema == SCHEMAS[name]
        assert canonical(getattr(got, name)) == canonical(expected), name
    assert rejects.rejects.as_dict()["rawlog_position"] == rejected
    return rejects


def test_the_wire_structs_are_not_tracked_by_the_garbage_collector() -> None:
    """The loader keeps a batch's decoded bodies alive while it builds columns; untracked
    Structs keep the collector from rescanning them (they can't form cycles)."""
    for name in ("Attribute", "Decision", "Event", "Snapshot", "Visitor", "EventBatch"):
        assert getattr(events, name).__struct_config__.gc is False, name


# -- valid batches ---------------------------------------------------------------------------

ids = st.sampled_from(["1", "2", "3"]) | st.none()
names = st.text(max_size=6) | st.sampled_from(['q"uo\\te', "é\u0301", "\u2028", "\x00\x1f"])
typed_text = st.one_of(
    st.integers(-(2**64), 2**64).map(str),
    st.floats(allow_nan=False).map(repr),
    st.sampled_from(["true", "false", "inf", "nan", "-Infinity", " 12 ", "\t-7\n", "1_000"]),
    st.sampled_from(["1__0", "_1", "1_", "+5", "-0", "1e5", ".5", "5.", "1_0.5e1_0", "1e999"]),
    st.sampled_from(["9223372036854775807", "-9223372036854775808", "\xa012\u3000", "\u0663"]),
    st.text(alphabet="0123456789_.+-eE xa", max_size=6),
)
typed = typed_text.map(lambda t: TYPED_PREFIX + t)
numbers = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) + 1, 0, 1e16, 1e-7, -0.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    typed,
    names,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    names,
    typed,
)
# Nested JSON is stored as compact JSON text, as msgspec writes it.
plain = st.text(max_size=4)
inner = (
    st.none()
    | st.booleans()
    | plain
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
)
values = scalars | st.lists(inner, max_size=2) | st.dictionaries(plain, inner, max_size=2)
timestamps = st.one_of(
    st.integers(10**12, 10**13 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([10**12 - 1, 10**12, 10**13 - 1, 10**13, 0, -1, 1_700_000_000]),
)
metadata = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "flag_key": names,
        "rule_key": names,
        "rule_type": st.sampled_from(["ab_test", "rollout"]),
        "variation_key": names,
        "enabled": st.booleans(),
        "cmab_uuid": names,
    },
)
decision = st.fixed_dictionaries(
    {},
    optional={
        "campaign_id": ids,
        "experiment_id": ids,
        "variation_id": ids,
        "is_campaign_holdback": st.booleans(),
        "metadata": metadata,
    },
)
event = st.fixed_dictionaries(
    {"timestamp": timestamps, "uuid": names.filter(bool)},
    optional={
        "entity_id": ids,
        "key": st.sampled_from([ACTIVATION, "buy"]) | st.none(),
        "type": st.sampled_from([ACTIVATION, "other"]) | st.none(),
        "revenue": numbers,
        "value": numbers,
        "quantity": numbers,
        "tags": st.none() | st.dictionaries(names, values, max_size=3),
        "properties": st.none() | st.dictionaries(names, values, max_size=2),
    },
)
snapshot = st.fixed_dictionaries(
    {"events": st.lists(event, max_size=3)},
    optional={"decisions": st.none() | st.lists(decision, max_size=3)},
)
attribute = st.fixed_dictionaries(
    {},
    optional={
        "entity_id": names | st.none(),
        "key": names | st.none(),
        "type": names,
        "value": values,
    },
)
visitor = st.fixed_dictionaries(
    {"visitor_id": names, "snapshots": st.lists(snapshot, max_size=3)},
    optional={
        "session_id": st.none() | st.just("") | names,
        "attributes": st.none() | st.lists(attribute, max_size=3),
    },
)
batch = st.fixed_dictionaries(
    {"account_id": names, "visitors": st.lists(visitor, max_size=3)},
    optional={
        "project_id": st.none() | names,
        "revision": st.none() | names | st.integers(0, 2**70),
        "client_name": st.none() | names,
        "client_version": st.none() | names,
        "enrich_decisions": st.none() | st.booleans(),
        "anonymize_ip": st.booleans(),
        "unknown": values,
    },
)
body = st.tuples(batch, st.booleans()).map(lambda b: json.dumps(b[0], ensure_ascii=b[1]).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(body, min_size=1, max_size=8), st.none() | st.integers(1, 2000))
def test_normalize_makes_the_oracles_rows(bodies: list[bytes], chunk_bytes: int | None) -> None:
    """Also when the bodies are made into columns a few at a time (``chunk_bytes``)."""
    assert same_rows(bodies, chunk_bytes).rejects.as_dict()["reason"] == []


def test_normalize_sdk_payload_keeps_every_column() -> None:
    body = {
        "account_id": "12001", "project_id": "111001", "revision": 7, "client_name": "python-sdk",
        "client_version": "5.7.0", "enrich_decisions": True,
        "visitors": [{"visitor_id": "u", "session_id": "s", "attributes": [
            {"entity_id": "9", "key": "plan", "type": "custom", "value": "\ue0001.50"},
            {"entity_id": "$opt_bot_filtering", "key": "$opt_bot_filtering", "value": True}],
            "snapshots": [{
                "decisions": [{"campaign_id": "10", "experiment_id": "11", "variation_id": "12",
                               "metadata": {"flag_key": "f", "rule_key": "r", "rule_type": "ab",
                                            "variation_key": "on", "enabled": True}}],
                "events": [
                    {"entity_id": "10", "key": ACTIVATION, "timestamp": 1795335792943,
                     "uuid": "d"},
                    {"entity_id": "5", "key": "buy", "timestamp": 1795335792944, "uuid": "c",
                     "revenue": "\ue0004200", "value": 42.5, "quantity": "\ue000 3 ",
                     "tags": {"value": 42.5, "n": "\ue0001.50", "o": {"a": [1, True]}}}]}]}],
    }  # fmt: skip
    rejects = Rows()
    got = normalise(records([json.dumps(body).encode()]), rejects)
    [d] = got.decisions.to_pylist()
    assert (d["flag_key"], d["variation_key"], d["enabled"], d["revision"]) == (
        "f",
        "on",
        True,
        "7",
    )
    assert d["attributes"][0]["value"] == "1.50"  # the simplification: the text as sent
    assert d["attributes"][1] == {
        "id": "$opt_bot_filtering", "name": "$opt_bot_filtering", "type": "custom",
        "value": "true"}  # fmt: skip
    [c] = got.conversions.to_pylist()
    assert (c["revenue"], c["value"], c["quantity"], c["problems"]) == (4200, 42.5, 3, [])
    assert c["tags"] == [("value", "42.5"), ("n", "1.50"), ("o", '{"a":[1,true]}')]
    assert c["experiments"] == [
        {"campaign_id": "10", "experiment_id": "11", "variation_id": "12", "is_holdback": False}
    ]
    assert int(c["timestamp"].timestamp() * 1000) == 1795335792944
    assert (c["date"], c["process_timestamp"].year) == ("2026-11-22", 2023)
    assert len(rejects.rejects) == 0


# -- bodies it can't read --------------------------------------------------------------------


def valid() -> dict[str, Any]:
    return {
        "account_id": "1",
        "visitors": [{"visitor_id": "v", "attributes": [{"value": 1}], "snapshots": [
            {"decisions": [{"campaign_id": "1"}],
             "events": [{"timestamp": 1_700_000_000_000, "uuid": "u", "key": "buy"}]}]}],
    }  # fmt: skip


def changed(path: list[str | int], value: Any) -> bytes:
    """A valid body with the value at ``path`` replaced (or deleted, for ``...``)."""
    body = valid()
    node: Any = body
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(body).encode()


V, S, E = ["visitors", 0], ["visitors", 0, "snapshots", 0], ["visitors", 0, "snapshots", 0]
EV = [*E, "events", 0]
INVALID = [
    b"{oops", b"[]", b"null", b'"x"', b"{}", b"\xff\xfe", b'{"account_id": "\\ud800"}',
    changed(["account_id"], 5), changed(["account_id"], ...), changed(["visitors"], {}),
    changed(["visitors"], [None]), changed(["visitors"], ["v"]), changed(["project_id"], 1),
    changed(["revision"], 1.5), changed(["revision"], True), changed(["anonymize_ip"], None),
    changed(["enrich_decisions"], "yes"), changed(["client_name"], []),
    changed([*V, "visitor_id"], ...), changed([*V, "visitor_id"], 3),
    changed([*V, "session_id"], 3), changed([*V, "snapshots"], ...),
    changed([*V, "snapshots"], [None]), changed([*V, "attributes", 0, "type"], None),
    changed([*V, "attributes", 0, "key"], 1), changed([*V, "attributes", 0], None),
    changed([*V, "snapshots", 0, "events"], None), changed([*S, "events"], ...),
    changed([*S, "decisions", 0], None), changed([*S, "decisions", 0, "campaign_id"], 1),
    changed([*S, "decisions", 0, "is_campaign_holdback"], None),
    changed([*S, "decisions", 0, "metadata"], [1]), changed([*EV, "timestamp"], ...),
    changed([*EV, "timestamp"], "1700000000000"), changed([*EV, "timestamp"], 1.7e12),
    changed([*EV, "uuid"], ""), changed([*EV, "uuid"], 5), changed([*EV, "entity_id"], 5),
    changed([*EV, "key"], False), changed([*EV, "revenue"], [1]), changed([*EV, "value"], True),
    changed([*EV, "quantity"], {}), changed([*EV, "tags"], "t"), changed([*EV, "tags"], []),
    changed([*EV, "properties"], 1), changed([*E, "events"], [None]),
    changed([*E, "events"], [1]), changed(["visitors", 0, "attributes", 0, "value"], 1e400),
]  # fmt: skip


@pytest.mark.parametrize("bad", INVALID, ids=range(len(INVALID)))
def test_normalize_rejects_what_decode_batch_rejects_and_keeps_the_rest(bad: bytes) -> None:
    good = json.dumps(valid()).encode()
    rejects = same_rows([good, bad, good], chunk_bytes=len(good)).rejects.as_dict()
    assert rejects["reason"] == ["invalid_body"]
    assert rejects["body"] == [bad]
    try:
        decode_batch(bad)
    except InvalidInput as exc:
        assert rejects["detail"] == ["; ".join(f"{d.path}: {d.problem}" for d in exc.details)]
    except ValueError:
        assert rejects["detail"][0].startswith("$: not valid JSON")


def test_normalize_reads_duplicate_tag_keys_as_python_does() -> None:
    body = json.dumps(valid()).replace('"key": "buy"', '"key": "buy", "tags": {"a": 1, "a": 2}')
    rejects = same_rows([body.encode()])
    assert len(rejects.rejects) == 0


def test_normalize_rejects_a_timestamp_the_lake_cannot_hold() -> None:
    """The collector refuses a timestamp past 64 bits; a raw log from before may hold one."""
    body = changed([*EV, "timestamp"], 2**63)
    with pytest.raises(InvalidInput) as refused:
        decode_batch(body)
    [problem] = refused.value.details
    assert problem.path == "$.visitors[0].snapshots[0].events[0].timestamp"
    assert problem.problem == f"must be an integer from {-(2**63)} to {2**63 - 1}"
    rejects = Rows()
    got = normalise(records([body, json.dumps(valid()).encode()]), rejects)
    assert got.conversions.num_rows == 1  # the other record loads
    [detail] = rejects.rejects.as_dict()["detail"]
    assert detail.startswith("$.visitors[0].snapshots[0].events[0].timestamp: must be an integer")
    assert decode_batch(changed([*EV, "timestamp"], 2**63 - 1))  # the largest one is taken


def test_normalize_only_the_tables_a_record_still_needs() -> None:
    body = valid()
    body["visitors"][0]["snapshots"][0]["events"].append(
        {"timestamp": 1_700_000_000_000, "uuid": "d", "key": ACTIVATION, "entity_id": "1"}
    )
    recs = V1Records()
    recs.add(Meta(1, "w0:0:0"), json.dumps(body).encode(), (False, True, True))
    recs.add(Meta(1, "w0:0:1"), json.dumps(body).encode(), (True, False, False))
    recs.add(Meta(1, "w0:0:2"), b"{}", (True, True, False))
    rejects = Rows()
    got = normalise(recs, rejects)
    assert got.conversions.column("rawlog_position").to_pylist() == ["w0:0:0"]
    assert got.decisions.column("rawlog_position").to_pylist() == ["w0:0:1"]
    assert len(rejects.rejects) == 0


def test_normalize_stores_decision_metadata_that_is_not_text_as_json() -> None:
    body = valid()
    snapshot = body["visitors"][0]["snapshots"][0]
    snapshot["decisions"][0]["metadata"] = {
        "flag_key": 5, "rule_key": ["a"], "rule_type": True, "enabled": "true"}  # fmt: skip
    snapshot["events"][0].update(key=ACTIVATION, entity_id="1")
    got = normalise(records([json.dumps(body).encode()]), Rows())
    [d] = got.decisions.to_pylist()
    assert (d["flag_key"], d["rule_key"], d["rule_type"], d["variation_key"], d["enabled"]) == (
        "5",
        '["a"]',
        "true",
        None,
        True,
    )


def test_normalize_rejects_alone_a_record_the_column_builders_fail_on() -> None:
    """A record that decodes but that the builders can't make rows of (a case the normaliser
    misses; a visitor id that is no string stands for one here, since the typed decoder lets
    none through) is rejected alone, with the error, and its batch still loads. Without this,
    every try failed the whole batch and loading stopped there."""
    bodies = [json.dumps(valid()).replace('"v"', f'"v{i}"').encode() for i in range(5)]
    recs = records(bodies)
    batches = [normalize._decoder.decode(b) for b in bodies]
    batches[3].visitors[0].visitor_id = 7  # type: ignore[assignment]
    rejects = Rows()
    got = normalize._build(recs, normalize._RecordColumns(recs), batches, [0, 1, 2, 3, 4], rejects)
    assert sorted(got.conversions.column("visitor_id").to_pylist()) == ["v0", "v1", "v2", "v4"]
    assert got.decisions.num_rows == 0 and got.conversions.schema == SCHEMAS["conversions"]
    rejected = rejects.rejects.as_dict()
    assert rejected["reason"] == ["unloadable_record"]
    assert rejected["rawlog_position"] == ["w0:0:3"]
    assert rejected["body"] == [bodies[3]]
    assert rejected["detail"][0].startswith("$: the loader could not make rows of it: Arrow")
