"""Fixtures for the statistics tests, among them GrowthBook's gbstats in its own environment.

gbstats (PyPI 0.8.0) pins ``numpy<2`` and pulls pandas, so it cannot live in liftlog's
environment. The first run creates ``<repo>/.cache/gbstats-venv`` with ``python -m venv`` and
``pip install gbstats==0.8.0`` (this needs access to PyPI); later runs reuse it. A half-made
environment (no ``.ready`` marker) is rebuilt. Failing to build it fails the tests: never a skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".cache" / "gbstats-venv"
GBSTATS_VERSION = "0.8.0"
RUNNER = Path(__file__).with_name("gbstats_runner.py")

GbStats = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def _venv_python() -> Path:
    ready = VENV / ".ready"
    python = VENV / "bin" / "python"
    if ready.exists() and ready.read_text() == GBSTATS_VERSION and python.exists():
        return python
    if VENV.exists():
        shutil.rmtree(VENV)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"gbstats=={GBSTATS_VERSION}"],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        raise RuntimeError(f"could not install gbstats:\n{install.stdout}\n{install.stderr}")
    ready.write_text(GBSTATS_VERSION)
    return python


@pytest.fixture(scope="session")
def gbstats() -> GbStats:
    """A function that runs a batch of cases through gbstats (see gbstats_runner.py)."""
    python = _venv_python()

    def run(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        done = subprocess.run(
            [str(python), str(RUNNER)],
            input=json.dumps(cases),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"gbstats runner failed:\n{done.stderr}")
        results: list[dict[str, Any]] = json.loads(done.stdout)
        return results

    return run
