"""Results brought up to date after an append, against counting from scratch and plain DuckDB.

    .venv/bin/python bench/incremental.py --visitors 1000000 --events 10000000 --append 100000

Builds `bench/results.py`'s synthetic lake (or uses ``--keep DIR``'s, copied, so the kept lake
stays as it was), counts its experiment from scratch keeping the per-visitor state
(`liftlog.analysis.incremental.count_state`), then, ``--rounds`` times, appends ``--append``
events in one Delta commit, as the loader does (a tenth of them first decisions of new visitors,
the rest conversions of old and new visitors a day after the lake's, 1% of them sent twice), and
times in the same round:

* baseline: the plain DuckDB ``GROUP BY visitor_id`` of `bench/results.py` over the whole lake;
* from scratch: `liftlog.analysis.counting.count` + `liftlog.report.build_results`;
* updated: `liftlog.analysis.incremental.update` from the last state + the same statistics;
* keeping the new state as a server does (`liftlog.api.visitor_states.States.put`: written to
  its file and read back memory-mapped), which a server does after answering.

Each round checks that the updated counts equal those from scratch (float sums to 1e-9), and
reports the process's peak RSS during the update alone (``VmHWM``, reset before it through
``/proc/self/clear_refs``: what the process held then, the state included, plus what the update
added).

After the rounds, the experiment's settings change: a metric added on an event none of its
metrics had, then the experiment paused after the lake's last event. Each new spec is counted
from scratch and `derive`d from the last state, checked equal, with the derivation's peak RSS.
Last, a second experiment starts after every event of the lake and gets ``--append`` events of
the lake's visitors in one commit: its first counting from scratch (`count`, and `count_daily`,
which the first view of its page runs) against the baseline over the whole lake.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import resource
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from liftlog.analysis.counting import count, count_daily
from liftlog.analysis.counts import Counts
from liftlog.analysis.incremental import VisitorState, count_state, counted, update
from liftlog.analysis.sources import open_lake, table_ids
from liftlog.api.visitor_states import States
from liftlog.report import Arm, build_results
from liftlog.rules.counting import Aggregator, CountingSpec, MetricSpec
from results import EVENTS, T0, Ids, baseline, build, spec, write

DAY = 86_400_000


def append(
    lake: Path,
    visitors: int,
    events: int,
    round_: int,
    ids: Ids | None = None,
    first: int | None = None,
) -> None:
    """``events`` more events of ``ids``' experiment at day ``2 + round_``: a tenth of them
    decisions of the visitors numbered from ``first`` (by default new ones), the rest
    conversions of those and the ones before them."""
    ids = ids or Ids()
    new = max(1, events // 10)
    t0 = T0 + (2 + round_) * DAY
    if first is None:
        first = visitors + round_ * new
    decisions = f"""
        SELECT 'day{round_}' AS date, 'd{round_}-' || i AS uuid,
               make_timestamp(({t0} + i) * 1000) AS timestamp, {t0} + i AS timestamp_raw,
               make_timestamp({t0} * 1000) AS process_timestamp, 'v' || ({first} + i) AS visitor_id,
               '{ids.experiment}' AS experiment_id, '{ids.campaign}' AS campaign_id,
               (['{"', '".join(ids.variations)}'])[1 + i % 3] AS variation_id,
               '{ids.campaign}' AS entity_id, false AS is_holdback, [] :: VARCHAR[] AS problems,
               'v1' AS source, 'w1:{round_}:' || i AS rawlog_position, '1' AS account_id
        FROM range({new}) t(i)
    """
    conversions = f"""
        WITH base AS (
            SELECT i, CASE WHEN i % 101 = 100 THEN i - 1 ELSE i END AS j
            FROM range({events - new}) t(i)
        )
        SELECT 'day{round_}' AS date, 'c{round_}-' || j AS uuid,
               make_timestamp(({t0} + {new} + j) * 1000) AS timestamp,
               {t0} + {new} + j AS timestamp_raw, make_timestamp({t0} * 1000) AS process_timestamp,
               'v' || (hash(j, {round_}) % ({first} + {new})) AS visitor_id,
               (['{"', '".join(EVENTS)}'])[1 + j % 5] AS event_name,
               (['{"', '".join(ids.events)}'])[1 + j % 5] AS entity_id,
               CASE WHEN j % 5 = 0 THEN 100 + j % 5000 END :: BIGINT AS revenue,
               CASE WHEN j % 5 = 1 THEN (j % 100) / 10.0 END :: DOUBLE AS value,
               [] :: VARCHAR[] AS problems, 'v1' AS source, 'w1:{round_}:c' || i AS rawlog_position,
               '1' AS account_id
        FROM base
    """
    con = duckdb.connect()
    for name, sql in (("decisions", decisions), ("conversions", conversions)):
        write(con, lake, name, sql, "append")


def statistics(counts: Counts, of: CountingSpec | None = None) -> None:
    of = of or spec()
    build_results(of, [Arm(v, v, 3333) for v in of.variation_ids], counts)


def from_scratch(lake: Path, of: CountingSpec | None = None) -> tuple[float, Counts]:
    con, _ = open_lake(lake)
    start = time.perf_counter()
    counts = count(con, of or spec())
    statistics(counts, of)
    return time.perf_counter() - start, counts


def settings_changed(lake: Path, state: VisitorState, after: int) -> None:
    """The experiment's settings changed: a metric added on an event none of its metrics had,
    or the experiment paused a day after ``after`` (a time past the lake's last event). Its
    state is `derive`d for the new spec, against counting that spec from scratch."""
    base = spec()
    added = dataclasses.replace(
        base, metrics=(*base.metrics, MetricSpec("503", "view_item", Aggregator.COUNT))
    )
    paused = dataclasses.replace(base, intervals=((T0, after + DAY),))
    ids = tuple(table_ids(lake))
    for name, of in (("a metric added", added), ("paused", paused)):
        scratch, expected = from_scratch(lake, of)
        peak_rss_reset()
        start = time.perf_counter()
        con, seen = open_lake(lake)
        derived, kept = counted(con, lake, of, seen, ids, state)
        statistics(derived.counts(), of)
        took = time.perf_counter() - start
        peak = peak_rss_mib()
        ok = kept and same(derived.counts(), expected)
        print(
            f"{name}: from scratch {scratch:.2f} s, derived from the state {took:.3f} s "
            f"({took / scratch:.3f}), equal: {'yes' if ok else 'NO'}, peak {peak:,.0f} MiB"
        )


def new_experiment(lake: Path, events: int, rounds: int) -> None:
    """A second experiment started after every event of the lake, with ``events`` events of
    visitors the lake already has, appended in one commit: its first counting from scratch
    (`count` and `count_daily`, which the first view of its page runs) against the baseline
    over the whole lake."""
    ids = Ids(experiment="110", campaign="210", variations=("311", "312", "313"))
    round_ = rounds + 1  # a day after the last round's events
    started = T0 + (2 + round_) * DAY
    append(lake, 0, events, round_, ids, first=0)
    of = dataclasses.replace(
        spec(), experiment_id=ids.experiment, campaign_id=ids.campaign,
        variation_ids=ids.variations, intervals=((started, None),),
    )  # fmt: skip
    base = baseline(lake)
    took, counts = from_scratch(lake, of)
    con, _ = open_lake(lake)
    start = time.perf_counter()
    count_daily(con, of)
    daily = time.perf_counter() - start
    visitors = sum(counts.visitors.values())
    print(
        f"a new experiment, {events:,} events of {visitors:,} visitors after the lake's: "
        f"baseline {base:.2f} s, first counting {took:.3f} s ({took / base:.3f}), "
        f"count_daily {daily:.3f} s ({daily / base:.3f})"
    )


def peak_rss_reset() -> None:
    """Start this process's peak RSS (``VmHWM``) again from what it holds now (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def updated(lake: Path, state: VisitorState) -> tuple[float, VisitorState]:
    start = time.perf_counter()
    con, seen = open_lake(lake)
    new = update(con, lake, state, seen, tuple(table_ids(lake)))
    if new is None:
        raise SystemExit("update asked for a counting from scratch")
    statistics(new.counts())
    return time.perf_counter() - start, new


def same(a: Counts, b: Counts) -> bool:
    if a.visitors != b.visitors or a.multiple_exposures != b.multiple_exposures:
        return False
    for mine, theirs in zip(a.metrics, b.metrics, strict=True):
        for v in mine:
            x, y = mine[v], theirs[v]
            for field in x.__dataclass_fields__:
                p, q = getattr(x, field), getattr(y, field)
                if isinstance(p, float) or isinstance(q, float):
                    if not math.isclose(p, q, rel_tol=1e-9, abs_tol=1e-9):
                        return False
                elif p != q:
                    return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--append", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="a lake built by bench/results.py --keep")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="liftlog-bench-"))
    lake = work / "data" / "lake"
    try:
        if args.keep is not None and (args.keep / "conversions").exists():
            shutil.copytree(args.keep, lake)
        else:
            start = time.perf_counter()
            build(lake, args.visitors, args.events)
            print(f"built {args.events:,} events in {time.perf_counter() - start:.1f} s")
        con, seen = open_lake(lake)
        start = time.perf_counter()
        state = count_state(con, spec(), seen, tuple(table_ids(lake)))
        print(f"first counting, keeping the state: {time.perf_counter() - start:.2f} s, "
              f"{state.visitors:,} visitors")  # fmt: skip
        states = States(work / "states")
        print(f"{'round':<6}{'events':>12}{'baseline s':>12}{'scratch s':>11}{'updated s':>11}"
              f"{'/baseline':>11}{'/scratch':>10}{'equal':>7}{'kept s':>8}"
              f"{'update peak MiB':>17}")  # fmt: skip
        total = args.events
        for r in range(args.rounds):
            append(lake, args.visitors, args.append, r)
            total += args.append
            base = baseline(lake)
            scratch, expected = from_scratch(lake)
            peak_rss_reset()
            took, state = updated(lake, state)
            update_peak = peak_rss_mib()
            ok = same(state.counts(), expected)
            start = time.perf_counter()
            states.put(state)
            kept = time.perf_counter() - start
            print(
                f"{r + 1:<6}{total:>12,}{base:>12.2f}{scratch:>11.2f}{took:>11.3f}"
                f"{took / base:>11.2f}{took / scratch:>10.3f}{'yes' if ok else 'NO':>7}"
                f"{kept:>8.2f}{update_peak:>17,.0f}"
            )
        settings_changed(lake, state, T0 + (2 + args.rounds) * DAY)
        new_experiment(lake, args.append, args.rounds)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {peak:,.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
