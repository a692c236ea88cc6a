"""The `Verifier` for OAuth access tokens, for `liftlog.api.auth.authenticate`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from liftlog.api.auth import Principal, Verifier
from liftlog.catalog.oauth import ACCESS_PREFIX, OAuthStore

if TYPE_CHECKING:
    from liftlog.catalog.store import Catalog


def oauth_verifier(catalog: Catalog) -> Verifier:
    """Resolve ``lloat_…`` access tokens; other tokens are not ours (None).

    A token of ours that is unknown, revoked, expired, or whose client was deleted raises
    `Unauthorized`. The principal's subject is ``<client_id>:<token row id>``.
    """
    store = OAuthStore.of(catalog)

    def verify(secret: str) -> Principal | None:
        if not secret.startswith(ACCESS_PREFIX):
            return None
        token = store.authenticate(secret)
        return Principal(
            kind="oauth",
            subject=f"{token.client_id}:{token.id}",
            account_id=token.account_id,
            scopes=frozenset(token.scope.split()),
        )

    return verify
