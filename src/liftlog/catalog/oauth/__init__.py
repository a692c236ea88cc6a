"""OAuth 2.0 state for liftlog's authorization server (`liftlog.api.oauth`).

`records` holds the stored shapes and the rules for their values; `store` the repository that
keeps them, one transaction per protocol step.
"""

from liftlog.catalog.oauth.records import (
    ACCESS_PREFIX,
    ACCESS_TTL_S,
    AUTH_METHODS,
    CLIENT_SECRET_PREFIX,
    CODE_TTL_MS,
    CONSENT_TTL_MS,
    PURGE_AFTER_MS,
    REFRESH_PREFIX,
    REFRESH_TTL_MS,
    SCOPES,
    AuthorizationCode,
    OAuthClient,
    OAuthToken,
    RegisteredClient,
    normal_scope,
    redirect_uri_problem,
)
from liftlog.catalog.oauth.store import OAuthStore

__all__ = [
    "ACCESS_PREFIX",
    "ACCESS_TTL_S",
    "AUTH_METHODS",
    "CLIENT_SECRET_PREFIX",
    "CODE_TTL_MS",
    "CONSENT_TTL_MS",
    "PURGE_AFTER_MS",
    "REFRESH_PREFIX",
    "REFRESH_TTL_MS",
    "SCOPES",
    "AuthorizationCode",
    "OAuthClient",
    "OAuthStore",
    "OAuthToken",
    "RegisteredClient",
    "normal_scope",
    "redirect_uri_problem",
]
