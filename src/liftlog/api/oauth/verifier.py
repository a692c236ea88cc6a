"""The `Verifier` for OAuth access tokens, for `liftlog.api.auth.authenticate`."""

from __future__ import annotations

from liftlog.api.auth import Principal, Verifier
from liftlog.api.oauth.server import CatalogSource, store_provider
from liftlog.catalog.oauth import ACCESS_PREFIX


def oauth_verifier(catalog: CatalogSource) -> Verifier:
    """Resolve ``lloat_…`` access tokens; other tokens are not ours (None).

    `catalog` is the catalog or a function returning the open one (None: 503). A token of ours
    that is unknown, revoked, expired, or whose client was deleted raises `Unauthorized`. The
    principal's subject is ``<client_id>:<token row id>``.
    """
    store = store_provider(catalog)

    def verify(secret: str) -> Principal | None:
        if not secret.startswith(ACCESS_PREFIX):
            return None
        token = store().authenticate(secret)
        return Principal(
            kind="oauth",
            subject=f"{token.client_id}:{token.id}",
            account_id=token.account_id,
            scopes=frozenset(token.scope.split()),
        )

    return verify
