"""OAuth 2.0 authorization server for third-party integrations (Authlib on Starlette).

    routes = oauth_routes(catalog, verifiers)     # mount in the app
    verify = oauth_verifier(catalog)              # add to the verifiers of the management API
    registered = register_client(catalog, "Acme sync", ["https://acme.example/cb"], ["read"])
    paths = openapi_paths()                       # OpenAPI path items for /openapi.json

State lives in `liftlog.catalog.oauth`; the protocol in `server`; HTTP in `routes`.
"""

from liftlog.api.oauth.clients import delete_client, register_client
from liftlog.api.oauth.openapi import openapi_paths
from liftlog.api.oauth.routes import oauth_routes
from liftlog.api.oauth.verifier import oauth_verifier

__all__ = ["delete_client", "oauth_routes", "oauth_verifier", "openapi_paths", "register_client"]
