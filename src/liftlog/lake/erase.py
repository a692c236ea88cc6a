"""Deleting a project's rows from the lake (what removing the demo project does)."""

from __future__ import annotations

import time
from pathlib import Path

from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from liftlog.lake.schema import TABLES


def delete_project_rows(lake_dir: Path, project_id: int, attempts: int = 20) -> int:
    """Delete the project's decisions and conversions (a reject has no project); return how
    many rows went. Retried when the loader commits to a table at the same moment."""
    tables = [t for t in TABLES if t != "rejects"]
    return sum(_delete(lake_dir / t, project_id, attempts) for t in tables)


def _delete(path: Path, project_id: int, attempts: int) -> int:
    for attempt in range(attempts):
        try:
            table = DeltaTable(str(path))
        except TableNotFoundError:
            return 0
        try:
            metrics = table.delete(f"project_id = '{project_id}'")
        except CommitFailedError:
            time.sleep(0.2 * (attempt + 1))
            continue
        return int(metrics.get("num_deleted_rows") or 0)
    raise RuntimeError(f"could not delete the project's rows from {path}: the table kept changing")
