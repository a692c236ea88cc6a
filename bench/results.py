"""How long a full results computation takes on a synthetic lake, against plain DuckDB.

    .venv/bin/python bench/results.py --visitors 1000000 --events 10000000
    .venv/bin/python bench/results.py --visitors 10000000 --events 100000000

Builds a lake with the loader's schema (3 variations, 5 metrics, one decision per visitor, the
rest conversions spread over the metric events, 1% duplicates), then times in the same run:

* baseline: a plain DuckDB ``GROUP BY visitor_id`` over the same Parquet files (per-visitor
  conversion counts and revenue), the least any per-visitor analysis has to do;
* liftlog: `liftlog.analysis.counting.count` (de-duplication, first decision, bounds, attribution
  and the per-variation moments of all 5 metrics) plus `liftlog.report.build_results`.

Prints seconds, the ratio liftlog/baseline, and peak RSS of this process.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
from deltalake import write_deltalake

from liftlog.analysis.counting import count
from liftlog.analysis.sources import connect
from liftlog.lake.schema import SCHEMAS
from liftlog.report import Arm, build_results
from liftlog.rules.counting import Aggregator, CountingSpec, MetricSpec

T0 = 1_767_225_600_000  # 2026-01-01
DAY = 86_400_000
EVENTS = ("purchase", "signup", "add_to_cart", "view_item", "share")


def _duck_type(arrow: str) -> str:
    return {
        "string": "VARCHAR",
        "int64": "BIGINT",
        "double": "DOUBLE",
        "bool": "BOOLEAN",
        "timestamp[ms, tz=UTC]": "TIMESTAMPTZ",
        "binary": "BLOB",
        "list<item: string>": "VARCHAR[]",
        "map<string, string>": "MAP(VARCHAR, VARCHAR)",
    }.get(arrow) or _nested(arrow)


def _nested(arrow: str) -> str:
    if "campaign_id" in arrow:
        return (
            "STRUCT(campaign_id VARCHAR, experiment_id VARCHAR, variation_id VARCHAR,"
            " is_holdback BOOLEAN)[]"
        )
    if "value: string" in arrow:
        return "STRUCT(id VARCHAR, name VARCHAR, type VARCHAR, value VARCHAR)[]"
    raise ValueError(f"no DuckDB type for {arrow}")


@dataclass(frozen=True)
class Ids:
    """The catalog ids the synthetic events use (the defaults match `spec`)."""

    experiment: str = "100"
    campaign: str = "200"
    variations: tuple[str, str, str] = ("301", "302", "303")
    #: The entity ids of `EVENTS`, in that order.
    events: tuple[str, ...] = tuple(f"50{i}" for i in range(len(EVENTS)))


def build(lake: Path, visitors: int, events: int, ids: Ids = Ids(), t0: int = T0) -> None:
    """Write the synthetic decisions and conversions; timestamps start at ``t0`` (epoch ms)."""
    con = duckdb.connect()
    conversions = events - visitors
    decisions_sql = f"""
        SELECT 'day' AS date, 'd' || i AS uuid,
               make_timestamp(({t0} + i % {DAY}) * 1000) AS timestamp,
               {t0} + i % {DAY} AS timestamp_raw, make_timestamp({t0} * 1000) AS process_timestamp,
               'v' || i AS visitor_id, '{ids.experiment}' AS experiment_id,
               '{ids.campaign}' AS campaign_id,
               (['{"', '".join(ids.variations)}'])[1 + i % 3] AS variation_id,
               '{ids.campaign}' AS entity_id,
               false AS is_holdback, [] :: VARCHAR[] AS problems, 'v1' AS source,
               'w0:1:' || i AS rawlog_position, '1' AS account_id
        FROM range({visitors}) t(i)
    """
    # Conversions go to pseudo-random visitors. Every 101st row repeats the row before it (same
    # visitor, event, uuid, timestamp and revenue): a resent event, 1% duplicates, of every event
    # (with every 100th, all of them would be of the 4th event, which no metric counts).
    conversions_sql = f"""
        WITH base AS (
            SELECT i, CASE WHEN i % 101 = 100 THEN i - 1 ELSE i END AS j
            FROM range({conversions}) t(i)
        )
        SELECT 'day' AS date, 'c' || j AS uuid,
               make_timestamp(({t0} + {DAY} + j % {DAY}) * 1000) AS timestamp,
               {t0} + {DAY} + j % {DAY} AS timestamp_raw,
               make_timestamp({t0} * 1000) AS process_timestamp,
               'v' || (hash(j) % {visitors}) AS visitor_id,
               (['{"', '".join(EVENTS)}'])[1 + j % 5] AS event_name,
               (['{"', '".join(ids.events)}'])[1 + j % 5] AS entity_id,
               CASE WHEN j % 5 = 0 THEN 100 + j % 5000 END :: BIGINT AS revenue,
               CASE WHEN j % 5 = 1 THEN (j % 100) / 10.0 END :: DOUBLE AS value,
               [] :: VARCHAR[] AS problems, 'v1' AS source, 'w0:2:' || i AS rawlog_position,
               '1' AS account_id
        FROM base
    """
    for name, sql in (("decisions", decisions_sql), ("conversions", conversions_sql)):
        write(con, lake, name, sql, "overwrite")


def write(
    con: duckdb.DuckDBPyConnection,
    lake: Path,
    name: str,
    sql: str,
    mode: Literal["overwrite", "append"],
) -> None:
    """The rows of ``sql`` into the lake's table ``name`` (the columns it lacks as nulls)."""
    schema = SCHEMAS[name]
    present = duckdb.sql(f"DESCRIBE ({sql} LIMIT 0)", connection=con).fetchall()
    have = {row[0] for row in present}
    fill = ", ".join(
        f"CAST(NULL AS {_duck_type(str(f.type))}) AS {f.name}" for f in schema if f.name not in have
    )
    full = f"SELECT *, {fill} FROM ({sql})" if fill else sql
    reader = con.sql(full).to_arrow_reader(1_000_000)
    if mode == "overwrite":
        write_deltalake(str(lake / name), reader, mode=mode, schema_mode="overwrite")
    else:
        write_deltalake(str(lake / name), reader, mode=mode)


def spec() -> CountingSpec:
    metrics = (
        MetricSpec("500", "purchase", Aggregator.UNIQUE),
        MetricSpec("500", "purchase", Aggregator.SUM, "revenue"),
        MetricSpec("501", "signup", Aggregator.UNIQUE),
        MetricSpec("502", "add_to_cart", Aggregator.COUNT),
        MetricSpec("501", "signup", Aggregator.SUM, "value"),
    )
    return CountingSpec("100", "200", ("301", "302", "303"), ((T0, None),), metrics)


def baseline(lake: Path) -> float:
    con = connect(lake)
    start = time.perf_counter()
    con.execute(
        "SELECT count(*), sum(revenue) FROM (SELECT visitor_id, count(*) AS n, "
        "sum(revenue) AS revenue FROM conversions GROUP BY visitor_id)"
    ).fetchall()
    return time.perf_counter() - start


def liftlog(lake: Path) -> float:
    con = connect(lake)
    start = time.perf_counter()
    counts = count(con, spec())
    arms = [Arm(v, v, 3333) for v in spec().variation_ids]
    build_results(spec(), arms, counts)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the lake here and keep it")
    args = parser.parse_args()
    lake = args.keep or Path(tempfile.mkdtemp(prefix="liftlog-bench-"))
    try:
        if not (lake / "conversions").exists():
            start = time.perf_counter()
            build(lake, args.visitors, args.events)
            print(f"built {args.events:,} events in {time.perf_counter() - start:.1f} s")
        rows = []
        for _ in range(args.repeat):
            rows.append((baseline(lake), liftlog(lake)))
        best_base = min(r[0] for r in rows)
        best_ours = min(r[1] for r in rows)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{'run':<6}{'baseline s':>12}{'liftlog s':>12}{'ratio':>8}")
        for i, (b, ours) in enumerate(rows, 1):
            print(f"{i:<6}{b:>12.2f}{ours:>12.2f}{ours / b:>8.2f}")
        print(f"best  {best_base:>12.2f}{best_ours:>12.2f}{best_ours / best_base:>8.2f}")
        print(f"peak RSS {peak:,.0f} MiB")
    finally:
        if args.keep is None:
            shutil.rmtree(lake, ignore_errors=True)


if __name__ == "__main__":
    main()
