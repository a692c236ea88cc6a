"""The personal-access-token `Verifier`: ``llpat_…`` secrets resolved through the catalog.

A secret without the ``llpat_`` prefix is not ours: the verifier returns None and the next one
(OAuth) may try it. One with the prefix that is unknown or revoked is refused with 401.
"""

from __future__ import annotations

from collections.abc import Callable

from liftlog.api.auth import Principal
from liftlog.catalog.store import Catalog
from liftlog.catalog.tokens import PREFIX
from liftlog.errors import Unavailable


class PersonalAccessTokens:
    """``Verifier`` over `Catalog.tokens`; `catalog` returns the open catalog (None before the
    server has opened it)."""

    def __init__(self, catalog: Callable[[], Catalog | None]) -> None:
        self.catalog = catalog

    def __call__(self, secret: str) -> Principal | None:
        if not secret.startswith(PREFIX):
            return None
        catalog = self.catalog()
        if catalog is None:
            raise Unavailable("The catalog is not open yet.")
        token = catalog.tokens.verify(secret)
        return Principal(
            kind="pat",
            subject=str(token.id),
            account_id=token.account_id,
            scopes=frozenset({token.scope}),
        )
