"""Audiences: ``/v2/audiences``, condition trees in Optimizely's format (``and``/``or``/``not``
over ``custom_attribute`` conditions), as a JSON string in ``conditions``."""

from __future__ import annotations

from liftlog.api.management.crud import Resource

RESOURCE = Resource(lambda catalog: catalog.audiences, "audience_id")
OPERATIONS = RESOURCE.operations("/v2/audiences", "Audiences", "an audience", "Audience")
