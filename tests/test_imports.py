"""What collects events does not load what analyses them.

The server process that answers the Event API, and the loader process it starts (which imports
the ``liftlog`` command's module again, being spawned), import the analysis stack (DuckDB, SciPy:
about 45 MiB) only when a results request or command needs it. Each check runs in a fresh
interpreter, so what this test process has imported does not matter.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

ANALYSIS_ONLY = ("duckdb", "scipy")


def _imported(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return {name.split(".")[0] for name in done.stdout.split()}


@pytest.mark.parametrize(
    "code",
    [
        "from liftlog.api.app import create_app",
        "import liftlog.cli",
        "from liftlog.lake.loader import run_loader_process",
    ],
)
def test_collecting_and_loading_do_not_import_the_analysis_stack(code: str) -> None:
    assert _imported(code).isdisjoint(ANALYSIS_ONLY)


def test_the_loader_process_loads_arrow_and_delta_after_its_allocator_settings() -> None:
    """The spawned loader imports the ``liftlog`` command's modules before `_run_loader` sets
    `LOADER_ALLOCATOR`; those settings are read when Arrow and Delta load, so the command's
    modules must not load them."""
    assert _imported("import liftlog.cli").isdisjoint({"pyarrow", "deltalake"})


def test_the_results_computations_do() -> None:
    """The probe can see an import: the module the results routes load on first use has both."""
    assert set(ANALYSIS_ONLY) <= _imported("import liftlog.api.reports")


def test_the_command_loads_the_database_layer_only_for_commands_that_use_it() -> None:
    """``liftlog --help``, ``liftlog serve --help`` and the commands that never open the catalog
    start without SQLAlchemy, Alembic and argon2 (0.7 s of imports at every start before)."""
    assert _imported("import liftlog.cli").isdisjoint({"sqlalchemy", "alembic", "argon2"})
