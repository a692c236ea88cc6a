"""The pure parts (`wire`, `rules`, `stats`) do no I/O, read no clock and draw no global randomness.

Every module's source is parsed, not imported, so a violation is caught even in code no test runs.
A module fails when it

* imports a standard-library module that does I/O, reads the clock or draws randomness;
* imports a third-party package its part is not allowed (wire: msgspec; rules: msgspec, mmh3;
  stats: numpy, scipy) or a liftlog package outside its boundary;
* names a clock or entropy source of an allowed module (``datetime.now``, ``date.today``,
  ``uuid.uuid4``, the global ``numpy.random`` functions), calls ``open``/``print``/``input``/
  ``exec``/``eval``/``__import__``, or draws ``.rvs(...)`` without a ``random_state=``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

#: Standard-library modules that reach outside the process, the clock or an entropy source, or
#: load code at run time. Compression belongs at the HTTP edge, not in the wire format.
FORBIDDEN_STDLIB = frozenset(
    {
        "asyncio", "bz2", "concurrent", "ctypes", "dbm", "fcntl", "ftplib", "getpass", "glob",
        "gzip", "http", "imaplib", "importlib", "io", "logging", "lzma", "mmap", "multiprocessing",
        "os", "pathlib", "platform", "poplib", "pty", "random", "resource", "secrets", "select",
        "selectors", "shelve", "shutil", "signal", "smtplib", "socket", "socketserver", "sqlite3",
        "ssl", "subprocess", "sys", "sysconfig", "tarfile", "tempfile", "threading", "time",
        "tkinter", "urllib.request", "webbrowser", "zipfile", "zlib",
    }
)  # fmt: skip

#: Dotted names that read the clock or entropy even though their module is otherwise pure.
FORBIDDEN_NAMES = frozenset(
    {
        "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today",
        "datetime.date.today", "uuid.uuid1", "uuid.uuid4", "numpy.random.default_rng",
        "numpy.random.seed", "numpy.random.random", "numpy.random.rand", "numpy.random.randn",
        "numpy.random.randint", "numpy.random.normal", "numpy.random.uniform",
        "numpy.random.binomial", "numpy.random.beta", "numpy.random.choice",
        "numpy.random.permutation", "numpy.random.shuffle", "numpy.random.get_state",
    }
)  # fmt: skip
FORBIDDEN_CALLS = frozenset({"open", "print", "input", "exec", "eval", "__import__", "breakpoint"})


@dataclass(frozen=True)
class Part:
    package: str
    third_party: frozenset[str]
    liftlog: frozenset[str]


PARTS = {
    "wire": Part(
        "liftlog.wire", frozenset({"msgspec"}), frozenset({"liftlog.wire", "liftlog.errors"})
    ),
    "rules": Part(
        "liftlog.rules",
        frozenset({"msgspec", "mmh3"}),
        frozenset({"liftlog.rules", "liftlog.wire", "liftlog.errors"}),
    ),
    "stats": Part("liftlog.stats", frozenset({"numpy", "scipy"}), frozenset({"liftlog.stats"})),
}


def _within(name: str, prefixes: frozenset[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _imported_modules(tree: ast.Module, module: str) -> Iterator[tuple[int, str, str | None]]:
    """(line, module, imported name or None) for every import, relative ones resolved."""
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                yield node.lineno, base, alias.name


def _aliases(tree: ast.Module, module: str) -> dict[str, str]:
    """Local name -> the dotted name it stands for (``import numpy as np`` -> np: numpy)."""
    names: dict[str, str] = {}
    for _, imported, name in _imported_modules(tree, module):
        if name is None:
            names[imported.split(".")[0]] = imported.split(".")[0]
        else:
            names[name] = f"{imported}.{name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = names.pop(alias.name, alias.name)
    return names


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def violations(source: str, module: str, part: Part) -> list[str]:
    """Every way ``source`` (the text of ``module``) breaks the purity rules of ``part``."""
    tree = ast.parse(source)
    found: list[str] = []
    for line, imported, name in _imported_modules(tree, module):
        full = f"{imported}.{name}" if name else imported
        top = imported.split(".")[0]
        if top == "__future__":
            continue
        if top == "liftlog":
            if not _within(full, part.liftlog) and not _within(imported, part.liftlog):
                found.append(f"line {line}: imports {full}, outside {part.package}'s boundary")
        elif top in sys.stdlib_module_names:
            if _within(imported, FORBIDDEN_STDLIB) or _within(full, FORBIDDEN_STDLIB):
                found.append(f"line {line}: imports {full} (I/O, clock or randomness)")
        elif top not in part.third_party:
            found.append(f"line {line}: imports third-party {top}, not allowed in {part.package}")
        if full in FORBIDDEN_NAMES:
            found.append(f"line {line}: imports {full} (clock or global randomness)")
    aliases = _aliases(tree, module)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node, aliases)
            if dotted in FORBIDDEN_NAMES:
                found.append(f"line {node.lineno}: uses {dotted} (clock or global randomness)")
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: calls {node.func.id}()")
            if (
                isinstance(node.func, ast.Attribute)
                and node.func.attr == "rvs"
                and not any(keyword.arg == "random_state" for keyword in node.keywords)
            ):
                found.append(f"line {node.lineno}: .rvs() without random_state= draws globally")
    return found


def _modules() -> list[tuple[str, Path]]:
    found = []
    for part in PARTS:
        for path in sorted((SRC / "liftlog" / part).rglob("*.py")):
            relative = path.relative_to(SRC).with_suffix("")
            # A package keeps its ``__init__`` suffix so relative imports resolve inside it.
            found.append((".".join(relative.parts), path))
    return found


MODULES = _modules()


def test_purity_covers_the_modules_that_must_be_pure() -> None:
    names = {name for name, _ in MODULES}
    assert {f"liftlog.{part}.__init__" for part in PARTS} <= names
    assert {"liftlog.wire.datafile", "liftlog.rules.bucketing", "liftlog.rules.audience"} <= names


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[name for name, _ in MODULES])
def test_pure_module_does_no_io_clock_or_randomness(module: str, path: Path) -> None:
    part = PARTS[module.split(".")[1]]
    assert violations(path.read_text(encoding="utf-8"), module, part) == []


@pytest.mark.parametrize(
    ("source", "part", "expected"),
    [
        ("import os", "wire", "imports os"),
        ("from os import path", "rules", "imports os.path"),
        ("import urllib.request", "wire", "imports urllib.request"),
        ("import random as r", "stats", "imports random"),
        ("from time import monotonic", "rules", "imports time.monotonic"),
        ("import zlib", "wire", "imports zlib"),
        ("from datetime import datetime\nx = datetime.now()", "wire", "uses datetime.datetime.now"),
        ("import datetime as dt\nx = dt.date.today()", "rules", "uses datetime.date.today"),
        ("from uuid import uuid4", "wire", "imports uuid.uuid4"),
        ("import numpy as np\nx = np.random.rand(3)", "stats", "uses numpy.random.rand"),
        ("from scipy import stats\nx = stats.norm.rvs(size=3)", "stats", ".rvs() without"),
        ("import numpy", "rules", "third-party numpy"),
        ("import httpx", "wire", "third-party httpx"),
        ("from liftlog.rawlog import writer", "wire", "outside liftlog.wire"),
        ("from liftlog.wire import events", "stats", "outside liftlog.stats"),
        ("from ..rawlog import writer", "rules", "imports liftlog.rawlog.writer"),
        ("x = open('f')", "rules", "calls open()"),
        ("print('x')", "stats", "calls print()"),
    ],
)
def test_purity_check_catches(source: str, part: str, expected: str) -> None:
    found = violations(source, f"liftlog.{part}.example", PARTS[part])
    assert any(expected in problem for problem in found), found


@pytest.mark.parametrize(
    ("source", "part"),
    [
        ("from __future__ import annotations\nimport msgspec\nfrom typing import Any", "wire"),
        ("from urllib.parse import parse_qsl\nfrom dataclasses import dataclass", "wire"),
        ("from liftlog.errors import InvalidInput\nfrom liftlog.wire.validate import x", "wire"),
        (
            "import mmh3\nfrom liftlog.wire.datafile import Datafile\nfrom . import audience",
            "rules",
        ),
        ("import math\nimport numpy as np\nfrom scipy import stats", "stats"),
        ("import numpy as np\ndef f(rng: np.random.Generator) -> float: ...", "stats"),
        ("from scipy import stats\nx = stats.norm.rvs(size=3, random_state=rng)", "stats"),
        (
            "from datetime import datetime, timezone\nx = datetime.fromtimestamp(0, timezone.utc)",
            "wire",
        ),
    ],
)
def test_purity_check_allows(source: str, part: str) -> None:
    assert violations(source, f"liftlog.{part}.example", PARTS[part]) == []
