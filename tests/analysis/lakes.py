"""Build a real lake from events, through the raw log and the loader, for analysis tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from liftlog.lake.loader import Loader
from liftlog.rawlog.record import Endpoint, RawRecord, encode_frame
from liftlog.rawlog.writer import open_writer
from liftlog.settings import Settings

T0 = 1_700_000_000_000
H = 3_600_000


def decision(
    visitor: str, variation: str, ts: int, uuid: str, *, experiment: str = "100",
    campaign: str = "200", entity: str | None = None, holdback: bool = False,
) -> dict[str, Any]:  # fmt: skip
    return {
        "visitor_id": visitor,
        "snapshots": [
            {
                "decisions": [{"campaign_id": campaign, "experiment_id": experiment,
                               "variation_id": variation, "is_campaign_holdback": holdback}],
                "events": [{"entity_id": entity or campaign, "key": "campaign_activated",
                            "timestamp": ts, "uuid": uuid}],
            }
        ],
    }  # fmt: skip


def conversion(
    visitor: str, ts: int, uuid: str, *, key: str = "purchase", entity: str = "500",
    revenue: Any = None, value: Any = None,
) -> dict[str, Any]:  # fmt: skip
    event: dict[str, Any] = {"entity_id": entity, "key": key, "timestamp": ts, "uuid": uuid}
    if revenue is not None:
        event["revenue"] = revenue
    if value is not None:
        event["value"] = value
    return {"visitor_id": visitor, "snapshots": [{"events": [event]}]}


def build_lake(
    data_dir: Path, visitors: list[dict[str, Any]], legacy: tuple[str, ...] | list[str] = ()
) -> Settings:
    """Each visitor entry becomes one request; each legacy query string one GET /event."""
    settings = Settings(data_dir=data_dir)
    writer = open_writer(settings.rawlog_dir)
    for i, visitor in enumerate(visitors):
        body = json.dumps({"account_id": "1", "visitors": [visitor]}).encode()
        writer.write(encode_frame(RawRecord(T0 + i, Endpoint.V1_EVENTS, body)))
    for query in legacy:
        writer.write(encode_frame(RawRecord(T0, Endpoint.LEGACY_GET, query.encode())))
    writer.close()
    loader = Loader(settings)
    loader.drain()
    loader.close()
    return settings
