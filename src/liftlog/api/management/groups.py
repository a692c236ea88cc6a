"""Exclusion groups: ``/v2/groups``. A visitor is in at most one experiment of a group; each
entity's ``weight`` (basis points) is its share of the group's traffic."""

from __future__ import annotations

from liftlog.api.management.crud import Resource

RESOURCE = Resource(lambda catalog: catalog.groups, "group_id")
OPERATIONS = RESOURCE.operations("/v2/groups", "Groups", "an exclusion group", "Group")
