"""The ``liftlog`` command: a thin layer over the same code the server uses.

`main` is the click group (in `liftlog.cli.base`); importing the modules below adds their
commands to it.
"""

from liftlog.cli import catalog, results, server  # noqa: F401  (they register their commands)
from liftlog.cli.base import main

__all__ = ["main"]
