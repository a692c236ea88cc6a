"""The stats package is pure: it imports numpy, scipy and pure standard-library modules only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "liftlog" / "stats"
ALLOWED = {
    "__future__", "numpy", "scipy", "math", "cmath", "dataclasses", "enum", "typing",
    "collections", "functools", "itertools", "operator", "numbers", "fractions", "abc",
}  # fmt: skip
# numpy/scipy corners that do I/O or draw global randomness.
FORBIDDEN_SUBMODULES = {"random", "testing", "lib.npyio", "io", "datasets", "misc"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: inside the package, fine
                continue
            module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            found.append((node.lineno, "__import__"))
    return found


def _problems(path: Path) -> list[str]:
    problems = []
    for line, name in _imports(path):
        top, _, rest = name.partition(".")
        if name.startswith("liftlog.stats"):
            continue
        if top in ("numpy", "scipy"):
            if any(rest == s or rest.startswith(s + ".") for s in FORBIDDEN_SUBMODULES):
                problems.append(f"{path.name}:{line} imports {name}")
        elif top not in ALLOWED:
            problems.append(f"{path.name}:{line} imports {name}")
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # np.random.* without importing numpy.random
        if isinstance(node, ast.Attribute) and node.attr == "random":
            problems.append(f"{path.name}:{node.lineno} uses .random")
    return problems


def test_stats_modules_exist() -> None:
    assert {p.name for p in _modules()} >= {"suffstats.py", "sequential.py", "frequentist.py"}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_stats_module_imports_only_pure_modules(path: Path) -> None:
    assert _problems(path) == []


@pytest.mark.parametrize(
    "source",
    ["import os", "from pathlib import Path", "import time", "import random",
     "from numpy import random", "import numpy.random", "import numpy as np\nnp.random.rand()",
     "from liftlog import errors", "__import__('socket')", "from datetime import datetime"],
)  # fmt: skip
def test_stats_purity_check_catches_impure_imports(tmp_path: Path, source: str) -> None:
    module = tmp_path / "impure.py"
    module.write_text(source + "\n")
    assert _problems(module) != []
