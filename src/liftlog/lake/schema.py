"""Arrow schemas of the lake's Delta tables (E3-compatible names, plus liftlog's own columns)."""

from __future__ import annotations

import pyarrow as pa

from liftlog.wire.rows import CONVERSION_COLUMNS, DECISION_COLUMNS, REJECT_COLUMNS

TS = pa.timestamp("ms", tz="UTC")
ATTRIBUTES = pa.list_(
    pa.struct(
        [("id", pa.string()), ("name", pa.string()), ("type", pa.string()), ("value", pa.string())]
    )
)
EXPERIMENTS = pa.list_(
    pa.struct(
        [
            ("campaign_id", pa.string()),
            ("experiment_id", pa.string()),
            ("variation_id", pa.string()),
            ("is_holdback", pa.bool_()),
        ]
    )
)
TYPES: dict[str, pa.DataType] = {
    "date": pa.string(),
    "timestamp": TS,
    "timestamp_raw": pa.int64(),
    "process_timestamp": TS,
    "is_holdback": pa.bool_(),
    "attributes": ATTRIBUTES,
    "experiments": EXPERIMENTS,
    "enrich_decisions": pa.bool_(),
    "enabled": pa.bool_(),
    "problems": pa.list_(pa.string()),
    "revenue": pa.int64(),
    "value": pa.float64(),
    "quantity": pa.int64(),
    "tags": pa.map_(pa.string(), pa.string()),
    "body": pa.binary(),
}


def _schema(names: tuple[str, ...]) -> pa.Schema:
    return pa.schema([(n, TYPES.get(n, pa.string())) for n in names])


SCHEMAS: dict[str, pa.Schema] = {
    "decisions": _schema(DECISION_COLUMNS),
    "conversions": _schema(CONVERSION_COLUMNS),
    "rejects": _schema(REJECT_COLUMNS),
}
TABLES = tuple(SCHEMAS)
PARTITION_BY = ["date"]
