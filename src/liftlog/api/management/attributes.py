"""Attributes: ``/v2/attributes``, the user attributes that audiences test."""

from __future__ import annotations

from liftlog.api.management.crud import Resource

RESOURCE = Resource(lambda catalog: catalog.attributes, "attribute_id")
OPERATIONS = RESOURCE.operations("/v2/attributes", "Attributes", "an attribute", "Attribute")
