"""Settings of a liftlog instance: where its data lives and the limits it enforces."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Optimizely: "A single JSON object must be 3.5 MB or less." liftlog reads MB as MiB, so that
#: every body Optimizely's Event API takes is taken here too. The limit applies after gzip.
MAX_BODY_BYTES = 3_670_016


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    max_body_bytes: int = MAX_BODY_BYTES
    segment_bytes: int = 64 << 20
    max_pending_bytes: int = 64 << 20
    database_url: str | None = None
    #: Counts that took a second or more are reused for up to this many times as long after
    #: newer events were loaded (at most 5 minutes; then 5 more while counted again in the
    #: background); 0 recounts whenever the lake changed.
    #: See `liftlog.api.count_cache`.
    results_reuse_factor: float = 10.0

    @property
    def rawlog_dir(self) -> Path:
        return self.data_dir / "rawlog"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def counts_dir(self) -> Path:
        """Counts kept between results requests (`liftlog.api.count_files`)."""
        return self.data_dir / "counts"

    @property
    def rebuild_backup_dir(self) -> Path:
        """The old lake while `liftlog.lake.rebuild` loads a new one; left only by a rebuild
        that did not finish."""
        return self.data_dir / "lake.before-rebuild"

    def to_env(self) -> dict[str, str]:
        env = {"LIFTLOG_DATA": str(self.data_dir)}
        if self.database_url:
            env["LIFTLOG_DATABASE_URL"] = self.database_url
        env["LIFTLOG_RESULTS_REUSE_FACTOR"] = repr(self.results_reuse_factor)
        return env

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            data_dir=Path(os.environ.get("LIFTLOG_DATA", "data")).resolve(),
            database_url=os.environ.get("LIFTLOG_DATABASE_URL") or None,
            results_reuse_factor=float(os.environ.get("LIFTLOG_RESULTS_REUSE_FACTOR", 10.0)),
        )
