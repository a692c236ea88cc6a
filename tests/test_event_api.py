"""POST /v1/events and GET /event against a real server, down to the rows in the lake."""

from __future__ import annotations

import copy
import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from liftlog.lake.status import lake_status
from liftlog.settings import MAX_BODY_BYTES
from tests.lake import rows
from tests.server import FIXTURES, Server


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "events" / name).read_text()))


def post(client: httpx.Client, body: bytes | dict[str, Any], **headers: str) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json", **headers}
    return client.post("/v1/events", content=data, headers=headers)


def test_events_seed_examples_are_stored_as_rows(server: Server, client: httpx.Client) -> None:
    assert post(client, fixture("activate.json")).status_code == 204
    assert post(client, fixture("track.json")).status_code == 204
    server.wait_loaded()

    [decision] = rows(server.data_dir, "decisions")
    assert decision["uuid"] == "12a25c92-7edd1-1c30-21a8-aa4c850671e4"
    assert decision["timestamp_raw"] == 1491519130343
    assert int(decision["timestamp"].timestamp() * 1000) == 1491519130343
    assert (decision["campaign_id"], decision["experiment_id"], decision["variation_id"]) == (
        "9560823711",
        "5733750339",
        "6630810318",
    )
    assert decision["entity_id"] == "9560823711"
    assert decision["account_id"] == "1887578053"
    assert decision["client_engine"] == "Optimizely/event-api-demo"
    assert decision["user_ip"] == "127.0.0.0"  # anonymize_ip: last octet truncated
    assert decision["problems"] == []
    assert decision["date"] == "2017-04-06"

    [conversion] = rows(server.data_dir, "conversions")
    assert conversion["event_name"] == "test_event"
    assert conversion["entity_id"] == "1260528912"
    assert conversion["revenue"] == 10000
    assert conversion["experiments"] == []
    assert conversion["source"] == "v1"
    assert rows(server.data_dir, "rejects") == []


def test_events_official_sdk_payloads_keep_metadata_and_attributes(
    server: Server, client: httpx.Client
) -> None:
    assert post(client, fixture("sdk_activate.json")).status_code == 204
    assert post(client, fixture("sdk_track.json")).status_code == 204
    server.wait_loaded()
    [decision] = rows(server.data_dir, "decisions")
    assert decision["rule_key"] == "ab_test"
    assert decision["variation_key"] == "control"
    assert decision["enabled"] is True
    assert decision["revision"] == "7"
    assert {"id": "$opt_bot_filtering", "name": "$opt_bot_filtering", "type": "custom",
            "value": "true"} in decision["attributes"]  # fmt: skip
    [conversion] = rows(server.data_dir, "conversions")
    assert (conversion["revenue"], conversion["value"]) == (4200, 42.5)
    assert dict(conversion["tags"]) == {"revenue": "4200", "value": "42.5", "category": "shoes"}
    assert {"id": "111095", "name": "age", "type": "custom", "value": "30"} in conversion[
        "attributes"
    ]


def test_events_permissive_inputs_are_accepted_and_flagged(
    server: Server, client: httpx.Client
) -> None:
    body = {
        "account_id": "1",
        "unknown_top_level": {"anything": [1, 2]},
        "region": "EU",
        "visitors": [
            {
                "visitor_id": "v1",
                "session_id": "",
                "attributes": [{"entity_id": "9", "key": "n", "type": "custom",
                                "value": "\ue000123"}],
                "snapshots": [
                    {
                        "decisions": [{"campaign_id": "10", "experiment_id": "11",
                                       "variation_id": None, "metadata": {"cmab_uuid": "x"}}],
                        "events": [{"entity_id": "10", "key": "campaign_activated",
                                    "timestamp": 1700000000000, "uuid": "not-an-rfc-uuid"}],
                    },
                    {
                        "events": [
                            {"entity_id": "5", "key": "buy", "timestamp": 1700000000001,
                             "uuid": "u2", "revenue": "\ue0002500", "value": "\ue0001.5",
                             "quantity": 2},
                            {"entity_id": "5", "key": "buy", "timestamp": 1700000000,
                             "uuid": "u3", "revenue": 99.5},
                        ]
                    },
                ],
            }
        ],
    }  # fmt: skip
    assert post(client, body).status_code == 204
    server.wait_loaded()
    [decision] = rows(server.data_dir, "decisions")
    assert decision["variation_id"] is None
    assert decision["session_id"] is None
    assert decision["attributes"][0]["value"] == "123"
    conversions = {r["uuid"]: r for r in rows(server.data_dir, "conversions")}
    assert (conversions["u2"]["revenue"], conversions["u2"]["value"]) == (2500, 1.5)
    assert conversions["u2"]["quantity"] == 2
    assert conversions["u2"]["problems"] == []
    assert conversions["u3"]["revenue"] is None
    assert conversions["u3"]["timestamp"] is None
    assert conversions["u3"]["timestamp_raw"] == 1700000000
    assert sorted(conversions["u3"]["problems"]) == ["revenue_not_integer", "timestamp_not_ms"]


def test_events_activation_by_type_or_key_and_mismatched_entity(
    server: Server, client: httpx.Client
) -> None:
    snap = {"decisions": [{"campaign_id": "10", "experiment_id": "11", "variation_id": "12"}]}
    body = {
        "account_id": "1",
        "visitors": [
            {"visitor_id": "a", "snapshots": [{**snap, "events": [
                {"entity_id": "10", "type": "campaign_activated", "timestamp": 1700000000000,
                 "uuid": "by-type"}]}]},
            {"visitor_id": "b", "snapshots": [{**snap, "events": [
                {"entity_id": "99", "key": "campaign_activated", "timestamp": 1700000000000,
                 "uuid": "wrong-entity"}]}]},
            {"visitor_id": "c", "snapshots": [{"events": [
                {"entity_id": "10", "key": "campaign_activated", "timestamp": 1700000000000,
                 "uuid": "no-decision"}]}]},
        ],
    }  # fmt: skip
    assert post(client, body).status_code == 204
    server.wait_loaded()
    got = {r["uuid"]: r for r in rows(server.data_dir, "decisions")}
    assert got["by-type"]["problems"] == [] and got["by-type"]["variation_id"] == "12"
    assert got["wrong-entity"]["problems"] == ["entity_not_campaign"]
    assert got["no-decision"]["problems"] == ["no_decision"]
    assert rows(server.data_dir, "conversions") == []


def test_events_gzip_deflate_and_text_plain_are_accepted(
    server: Server, client: httpx.Client
) -> None:
    body = json.dumps(fixture("track.json")).encode()
    assert post(client, gzip.compress(body), **{"content-encoding": "gzip"}).status_code == 204
    assert post(client, zlib.compress(body), **{"content-encoding": "deflate"}).status_code == 204
    beacon = client.post("/v1/events", content=body, headers={"content-type": "text/plain"})
    assert beacon.status_code == 204
    assert beacon.headers["access-control-allow-origin"] == "*"
    server.wait_loaded()
    assert len(rows(server.data_dir, "conversions")) == 3


def test_events_cors_preflight(client: httpx.Client) -> None:
    r = client.options(
        "/v1/events",
        headers={
            "origin": "https://shop.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "content-type"


def _valid() -> dict[str, Any]:
    return {
        "account_id": "1",
        "visitors": [
            {
                "visitor_id": "v",
                "snapshots": [{"events": [{"timestamp": 1700000000000, "uuid": "u"}]}],
            }
        ],
    }


def _without(path: list[str | int]) -> dict[str, Any]:
    body = _valid()
    node: Any = body
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return body


def _with(path: list[str | int], value: Any) -> dict[str, Any]:
    body = _valid()
    node: Any = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


EVENT = ["visitors", 0, "snapshots", 0, "events", 0]
#: 100,000 nested empty arrays.
DEEP = b"[" * 100_000 + b"]" * 100_000
MALFORMED: list[tuple[str, bytes | dict[str, Any], list[dict[str, str]]]] = [
    ("not json", b"{oops", [{"path": "$", "problem": "not valid JSON: ..."}]),
    ("array", b"[]", [{"path": "$", "problem": "expected an object, got array"}]),
    ("no account", _without(["account_id"]), [{"path": "$.account_id", "problem": "is required"}]),
    ("no visitors", _without(["visitors"]), [{"path": "$.visitors", "problem": "is required"}]),
    ("no visitor_id", _without(["visitors", 0, "visitor_id"]),
     [{"path": "$.visitors[0].visitor_id", "problem": "is required"}]),
    ("no snapshots", _without(["visitors", 0, "snapshots"]),
     [{"path": "$.visitors[0].snapshots", "problem": "is required"}]),
    ("no events", _without(["visitors", 0, "snapshots", 0, "events"]),
     [{"path": "$.visitors[0].snapshots[0].events", "problem": "is required"}]),
    ("no timestamp", _without([*EVENT, "timestamp"]),
     [{"path": "$.visitors[0].snapshots[0].events[0].timestamp", "problem": "is required"}]),
    ("no uuid", _without([*EVENT, "uuid"]),
     [{"path": "$.visitors[0].snapshots[0].events[0].uuid", "problem": "is required"}]),
    ("empty uuid", _with([*EVENT, "uuid"], ""),
     [{"path": "$.visitors[0].snapshots[0].events[0].uuid", "problem": "must not be empty"}]),
    ("string timestamp", _with([*EVENT, "timestamp"], "1700000000000"),
     [{"path": "$.visitors[0].snapshots[0].events[0].timestamp",
       "problem": "expected an integer, got string"}]),
    ("timestamp past 64 bits", _with([*EVENT, "timestamp"], 2**63),
     [{"path": "$.visitors[0].snapshots[0].events[0].timestamp",
       "problem": "must be an integer from -9223372036854775808 to 9223372036854775807"}]),
    ("numeric account", _with(["account_id"], 12),
     [{"path": "$.account_id", "problem": "expected a string, got number"}]),
    ("visitors object", _with(["visitors"], {}),
     [{"path": "$.visitors", "problem": "expected an array, got object"}]),
    ("bad revenue type", _with([*EVENT, "revenue"], [1]),
     [{"path": "$.visitors[0].snapshots[0].events[0].revenue",
       "problem": "expected an integer or a number or a string or null, got array"}]),
    ("several at once", {"visitors": [{"snapshots": [{"events": [{}]}]}]},
     [{"path": "$.account_id", "problem": "is required"},
      {"path": "$.visitors[0].visitor_id", "problem": "is required"},
      {"path": "$.visitors[0].snapshots[0].events[0].timestamp", "problem": "is required"},
      {"path": "$.visitors[0].snapshots[0].events[0].uuid", "problem": "is required"}]),
    # nested past the JSON parser's recursion limit: where it can't be typed, and in tags
    ("deep visitors", b'{"account_id": "1", "visitors": ' + DEEP + b"}",
     [{"path": "$", "problem": "nests too deeply"}]),
    ("deep tags", json.dumps(_with([*EVENT, "tags"], {"a": "DEEP"})).encode().replace(
        b'"DEEP"', DEEP), [{"path": "$", "problem": "nests too deeply"}]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "details"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_events_malformed_input_is_rejected_by_path_and_not_stored(
    server: Server, client: httpx.Client, case: str, body: Any, details: list[dict[str, str]]
) -> None:
    r = post(client, body)
    assert r.status_code == 400, case
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "invalid_input"
    assert [_prefix(d, e) for d, e in zip(error["details"], details, strict=False)] == details
    assert lake_status(server.settings)["rawlog"]["bytes"] == 0


def _prefix(got: dict[str, str], expected: dict[str, str]) -> dict[str, str]:
    """``got``, with its problem cut to the expected one's prefix when that ends in "..."."""
    want = expected["problem"]
    if want.endswith("...") and got["problem"].startswith(want[:-3]):
        return {**got, "problem": want}
    return got


def _padded(size: int) -> bytes:
    """A valid batch padded with JSON whitespace to exactly ``size`` bytes."""
    body = json.dumps(_valid()).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_events_size_limit_applies_to_the_decoded_body(
    server: Server, client: httpx.Client
) -> None:
    assert post(client, _padded(MAX_BODY_BYTES)).status_code == 204
    too_big = post(client, _padded(MAX_BODY_BYTES + 1))
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "payload_too_large"
    zipped = gzip.compress(_padded(MAX_BODY_BYTES + 1))
    assert len(zipped) < 100_000
    assert post(client, zipped, **{"content-encoding": "gzip"}).status_code == 413
    assert post(client, gzip.compress(_padded(MAX_BODY_BYTES)),
                **{"content-encoding": "gzip"}).status_code == 204  # fmt: skip
    assert server.wait_loaded()["tables"]["conversions"]["rows"] == 2  # type: ignore[index]
    assert len(rows(server.data_dir, "rejects")) == 0


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_events_gzip_bomb_is_refused_without_inflating_it(
    server: Server, client: httpx.Client
) -> None:
    # 1 GiB of spaces compresses to about 1 MiB.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1 << 20)
    bomb = b"".join(compressor.compress(block) for _ in range(1024)) + compressor.flush()
    assert len(bomb) < 2 << 20
    assert server.proc is not None
    before = _rss_kib(server.proc.pid)
    r = post(client, bomb, **{"content-encoding": "gzip"})
    assert r.status_code == 413
    assert _rss_kib(server.proc.pid) - before < 64 * 1024


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({"content-encoding": "br"}, b"{}", 415, "unsupported_media_type"),
        ({"content-encoding": "gzip"}, gzip.compress(b'{"a": 1}')[:-8], 400, "invalid_input"),
        ({"content-encoding": "gzip"}, b"not gzip at all", 400, "invalid_input"),
    ],
    ids=["unknown encoding", "truncated gzip", "not gzip"],
)
def test_events_bad_encoding_is_a_4xx(
    server: Server, client: httpx.Client, headers: dict[str, str], body: bytes, status: int,
    code: str,
) -> None:  # fmt: skip
    r = post(client, body, **headers)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert lake_status(server.settings)["rawlog"]["bytes"] == 0


def test_events_wrong_method_is_405(client: httpx.Client) -> None:
    r = client.get("/v1/events")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_legacy_seed_url_is_stored_with_its_variations(
    server: Server, client: httpx.Client
) -> None:
    query = (FIXTURES / "events" / "legacy.txt").read_text().strip()
    r = client.get(f"/event?{query}&s983745985=gc&time=1462472175")
    assert r.status_code == 204
    server.wait_loaded()
    [row] = rows(server.data_dir, "conversions")
    assert row["source"] == "legacy"
    assert row["project_id"] == "1234567"
    assert row["event_name"] == "example_event"
    assert row["visitor_id"] == "oeu1316548451038r0.12412704364396632"
    assert row["revenue"] == 500
    assert row["entity_id"] == "1234567"
    assert row["timestamp_raw"] == 1462472175000
    assert [(e["experiment_id"], e["variation_id"]) for e in row["experiments"]] == [
        ("987654321", "1111111"),
        ("876543210", "2222222_3333333"),
    ]
    assert row["attributes"] == [
        {"id": "983745985", "name": None, "type": "segment", "value": "gc"}
    ]


def test_legacy_answers_a_gif_to_image_clients(client: httpx.Client) -> None:
    r = client.get("/event?a=1&n=e&u=v", headers={"accept": "image/avif,image/webp,*/*;q=0.8"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/gif"
    assert r.content.startswith(b"GIF89a")


def test_legacy_missing_parameters_are_named(server: Server, client: httpx.Client) -> None:
    r = client.get("/event?u=v&x1=&time=soon")
    assert r.status_code == 400
    assert r.json()["error"]["details"] == [
        {"path": "query.x1", "problem": "needs a variation id"},
        {"path": "query.a", "problem": "is required"},
        {"path": "query.n", "problem": "is required"},
        {"path": "query.time", "problem": "must be epoch seconds (an integer)"},
    ]
    assert lake_status(server.settings)["rawlog"]["bytes"] == 0
    past_64_bits = client.get("/event?a=1&n=e&u=v&time=" + "9" * 17)  # in ms: past 2**63
    assert past_64_bits.status_code == 400
    assert past_64_bits.json()["error"]["details"][0]["path"] == "query.time"
    assert lake_status(server.settings)["rawlog"]["bytes"] == 0


def test_events_many_visitors_in_one_batch(server: Server, client: httpx.Client) -> None:
    body = fixture("sdk_track.json")
    template = body["visitors"][0]
    body["visitors"] = []
    for i in range(500):
        visitor = copy.deepcopy(template)
        visitor["visitor_id"] = f"user-{i}"
        visitor["snapshots"][0]["events"][0]["uuid"] = f"uuid-{i}"
        body["visitors"].append(visitor)
    assert post(client, body).status_code == 204
    server.wait_loaded()
    got = rows(server.data_dir, "conversions")
    assert sorted(r["uuid"] for r in got) == sorted(f"uuid-{i}" for i in range(500))
