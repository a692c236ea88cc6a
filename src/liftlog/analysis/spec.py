"""An experiment of the catalog as `CountingSpec`: wire ids (strings), epoch ms, metric events."""

from __future__ import annotations

from liftlog.catalog.store import Catalog
from liftlog.rules.counting import Aggregator, CountingSpec, MetricSpec


def counting_spec(catalog: Catalog, experiment_id: int) -> CountingSpec:
    experiment = catalog.experiments.get(experiment_id)
    metrics = []
    for m in experiment.metrics:
        event = catalog.events.get(m.event_id)
        metrics.append(
            MetricSpec(
                event_id=str(event.id),
                event_key=event.key,
                aggregator=Aggregator(m.aggregator),
                field=m.field,
                winning_direction=m.winning_direction,
            )
        )
    window = experiment.attribution_window_seconds
    return CountingSpec(
        experiment_id=str(experiment.id),
        campaign_id=str(experiment.campaign_id),
        variation_ids=tuple(str(v.variation_id) for v in experiment.variations),
        intervals=tuple(catalog.experiments.running_intervals(experiment_id)),
        metrics=tuple(metrics),
        attribution_window_ms=None if window is None else window * 1000,
    )
