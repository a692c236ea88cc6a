"""Results and the event debugger: the same code as ``GET /v2/experiments/{id}/results``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from liftlog.cli.base import json_option, main, open_catalog, reading_options
from liftlog.methods import METHODS
from liftlog.settings import Settings


@main.command()
@click.argument("experiment_id", type=int)
@click.option("--method", type=click.Choice(METHODS), default="sequential", show_default=True)
@click.option("--segment", help="Break down by this attribute (key or id).")
@reading_options
@json_option
def results(experiment_id: int, method: str, segment: str | None, data_dir: Path,
            database_url: str | None, as_json: bool) -> None:  # fmt: skip
    """An experiment's results: visitors, conversions, improvement and significance.

    Counts the lake as it is now; counts kept by the server (or an earlier run) answer only if
    they are of this very snapshot of the lake, and what this run counts is kept for them.
    """
    from liftlog.analysis.counts import empty_counts, segment_order
    from liftlog.api.reports import Reports, segment_json
    from liftlog.report import build_results, results_text

    settings = Settings(data_dir=data_dir.resolve(), results_reuse_factor=0)
    with open_catalog(data_dir, database_url) as catalog:
        reports = Reports(settings, lambda: catalog)
        spec, arms, level = reports.experiment(experiment_id)
    by_segment = reports.segment_counts(spec, segment)
    if segment is None:
        by_segment = {None: by_segment.get(None) or empty_counts(spec)}
    for value, counts in sorted(by_segment.items(), key=lambda kv: segment_order(kv[0])):
        doc = build_results(spec, arms, counts, method=method, level=level)
        part = segment_json(value)
        if as_json:
            shown = {"segment": part.pop("value"), **part, **doc} if segment else doc
            click.echo(json.dumps(shown, indent=2))
            continue
        if segment:
            label = part["value"] if part["value"] is not None else "(not set)"
            click.echo(f"== {segment} = {label}")
        click.echo(results_text(doc))


@main.command()
@click.option("--visitor", "visitor_id", required=True, help="The visitor id.")
@click.option("--experiment", "experiment_id", required=True, type=int)
@reading_options
@json_option
def explain(visitor_id: str, experiment_id: int, data_dir: Path, database_url: str | None,
            as_json: bool) -> None:  # fmt: skip
    """Every stored event of a visitor, and why it did or did not count in an experiment."""
    from liftlog.analysis.explain import judged
    from liftlog.analysis.sources import connect
    from liftlog.analysis.spec import counting_spec
    from liftlog.api.reports import event_json

    with open_catalog(data_dir, database_url) as catalog:
        spec = counting_spec(catalog, experiment_id)
    lake = Settings(data_dir=data_dir.resolve()).lake_dir
    events, total = judged(connect(lake), visitor_id, spec)
    more = total - len(events)
    if more:
        click.echo(f"{total:,} stored events; the oldest {len(events):,} are shown", err=True)
    if as_json:
        click.echo(json.dumps([event_json(d) for d in events], indent=2))
        return
    if not events:
        click.echo(f"no stored events for visitor {visitor_id!r}")
    for d in events:
        e = event_json(d)
        click.echo(f"{e['time'] or e['timestamp']}  {e['kind']:<10} {e['key'] or '':<18} "
                   f"{e['uuid']:<38} {e['disposition']}")  # fmt: skip
        click.echo(f"    {e['reason']}")
