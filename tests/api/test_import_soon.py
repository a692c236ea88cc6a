"""The results' computations are imported ahead of the first results request when one is likely:
after a token that may read the APIs is accepted (sign-ins: `tests/web/test_signin.py`)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.api.conftest import start_api
from tests.server import mapped, wait_analysis_imported


def test_a_token_that_reads_the_api_imports_them_and_a_datafile_token_does_not(
    tmp_path: Path,
) -> None:
    served = start_api(tmp_path / "data")
    try:
        assert served.server.proc is not None
        pid = served.server.proc.pid
        with served.client(served.datafile) as sdk:
            assert sdk.get("/datafiles/auth/none.json").status_code == 404  # token accepted
        with served.client("llpat_not_a_token") as stranger:
            assert stranger.get("/v2/projects").status_code == 401
        time.sleep(1)
        assert not mapped(pid, "duckdb") and not mapped(pid, "scipy/optimize")
        with served.client(served.read) as reader:
            assert reader.get("/v2/projects").status_code == 200
        wait_analysis_imported(pid, "a request with a read token")
    finally:
        served.server.stop()
