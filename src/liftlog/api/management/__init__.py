"""The management REST API: Optimizely's REST API v2 paths and JSON shapes, over the catalog.

Every operation needs a bearer token with the ``read`` scope (GET) or ``write`` (other methods).
"""

from __future__ import annotations

from liftlog.api.management import (
    attributes,
    audiences,
    events,
    experiments,
    groups,
    lists,
    projects,
)
from liftlog.api.management.http import Operation

OPERATIONS: list[Operation] = [
    *projects.OPERATIONS,
    *experiments.OPERATIONS,
    *events.OPERATIONS,
    *attributes.OPERATIONS,
    *audiences.OPERATIONS,
    *groups.OPERATIONS,
    *lists.OPERATIONS,
]
