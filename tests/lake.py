"""Reading the lake in tests: whole Delta tables as lists of dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deltalake import DeltaTable

from liftlog.lake.loader import open_table


def rows(data_dir: Path, table: str) -> list[dict[str, Any]]:
    dt = open_table(data_dir / "lake" / table)
    if dt is None:
        return []
    return list(DeltaTable(str(data_dir / "lake" / table)).to_pyarrow_table().to_pylist())
