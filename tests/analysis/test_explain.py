"""The debugger's reasons, event by event, and their agreement with the counting SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from liftlog.analysis.counting import hits_view, prepare
from liftlog.analysis.explain import events_by_uuid, judged, rejected_mentions, timeline
from liftlog.analysis.sources import connect
from liftlog.lake.loader import Loader
from liftlog.rawlog.record import Endpoint, RawRecord, encode_frame
from liftlog.rawlog.writer import open_writer
from liftlog.rules.counting import Reason
from tests.analysis.lakes import T0, build_lake, conversion, decision
from tests.analysis.test_counting import LEGACY, SPEC, scenario

EXPECTED = {
    "v1": [("d1", Reason.DECISION), ("c1a", Reason.COUNTED), ("c1b", Reason.COUNTED)],
    "v2": [
        ("c2early", Reason.BEFORE_FIRST_DECISION),
        ("d2", Reason.DECISION),
        ("d2", Reason.DUPLICATE),
        ("c2", Reason.COUNTED),
        ("c2", Reason.DUPLICATE),
    ],
    "v3": [("d3early", Reason.OUTSIDE_BOUNDS), ("d3", Reason.DECISION), ("c3", Reason.COUNTED)],
    "v4": [("d4a", Reason.DECISION), ("d4b", Reason.MULTIPLE_EXPOSURE), ("c4", Reason.COUNTED)],
    "v5": [("c5", Reason.NEVER_DECIDED)],
    "v6": [("d6", Reason.ENTITY_NOT_CAMPAIGN), ("c6", Reason.NEVER_DECIDED)],
    "v7": [("d7", Reason.DECISION), ("c7", Reason.OUTSIDE_BOUNDS)],
    "v9": [("d9", Reason.TIMESTAMP_NOT_MS)],
    "v10": [("d10", Reason.HOLDBACK)],
    "v11": [("d11", Reason.OTHER_EXPERIMENT)],
    "v12": [("d12", Reason.DECISION), ("c12x", Reason.UNKNOWN_EVENT), ("c12", Reason.COUNTED)],
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = build_lake(tmp_path_factory.mktemp("lake"), scenario(), LEGACY)
    return settings.lake_dir


@pytest.mark.parametrize("visitor", sorted(EXPECTED))
def test_explain_gives_each_event_its_reason(lake: Path, visitor: str) -> None:
    got = [(d.event.uuid, d.reason) for d in timeline(connect(lake), visitor, SPEC)]
    assert got == EXPECTED[visitor]


def test_explain_notes_revenue_that_is_not_an_integer(lake: Path) -> None:
    [counted] = [d for d in timeline(connect(lake), "v12", SPEC) if d.event.uuid == "c12"]
    assert counted.notes == (Reason.REVENUE_NOT_INTEGER,)
    assert counted.variation_id == "302"


def test_explain_legacy_call_is_decision_and_conversion(lake: Path) -> None:
    [event] = timeline(connect(lake), "v8", SPEC)
    assert event.event.source == "legacy"
    assert (event.reason, event.variation_id) == (Reason.COUNTED, "302")


def test_explain_agrees_with_counting_on_every_conversion(lake: Path) -> None:
    con = connect(lake)
    hits_view(con, SPEC, prepare(con, SPEC))
    counted_sql = sorted(
        (visitor, variation, ts)
        for visitor, variation, ts in con.execute(
            "SELECT DISTINCT visitor_id, variation_id, ts FROM hits"
        ).fetchall()
    )
    assigned_sql = dict(con.execute("SELECT visitor_id, variation_id FROM assigned").fetchall())
    visitors = [r[0] for r in con.execute("SELECT DISTINCT visitor_id FROM conversions").fetchall()]
    visitors += [r[0] for r in con.execute("SELECT DISTINCT visitor_id FROM decisions").fetchall()]
    counted_py = []
    assigned_py = {}
    for visitor in set(visitors):
        for d in timeline(con, visitor, SPEC):
            if d.reason is Reason.COUNTED:
                counted_py.append((visitor, d.variation_id, d.event.timestamp))
            if d.reason is Reason.DECISION or (
                d.reason is Reason.COUNTED and d.event.source == "legacy"
            ):
                assigned_py[visitor] = d.variation_id
    assert sorted(counted_py) == counted_sql
    assert assigned_py == assigned_sql


def test_explain_by_uuid_and_rejected_mentions(tmp_path: Path) -> None:
    settings = build_lake(tmp_path, scenario())
    writer = open_writer(settings.rawlog_dir)
    writer.write(
        encode_frame(RawRecord(T0, Endpoint.V1_EVENTS, b'{"account_id": 1, "uuid": "lost-1"}'))
    )
    writer.close()
    loader = Loader(settings)
    loader.drain()
    loader.close()
    con = connect(settings.lake_dir)
    assert [e.duplicate for e in events_by_uuid(con, "c2")] == [False, True]
    [reject] = rejected_mentions(con, "lost-1")
    assert reject["reason"] == "invalid_body"


def test_a_long_timeline_shows_its_oldest_events_judged_by_all_of_them(tmp_path: Path) -> None:
    """Cut to its oldest events, a visitor's timeline still finds the first decision among all
    of them: conversions before a decision past the cut are before it, not 'never decided'."""
    H = 3_600_000
    events = [conversion("busy", T0 + H + i, f"early{i}") for i in range(5)]
    events += [decision("busy", "302", T0 + 2 * H, "d"), conversion("busy", T0 + 3 * H, "late")]
    con = connect(build_lake(tmp_path, events).lake_dir)
    shown, total = judged(con, "busy", SPEC, limit=3)
    assert total == 7
    assert [(d.event.uuid, d.reason) for d in shown] == [
        (f"early{i}", Reason.BEFORE_FIRST_DECISION) for i in range(3)
    ]
    [late], one = judged(con, "busy", SPEC, uuid="late")
    assert (late.reason, late.variation_id, one) == (Reason.COUNTED, "302", 1)
    assert len(timeline(con, "busy", SPEC)) == 7  # the default cut is far above
