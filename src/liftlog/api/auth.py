"""Who is calling: bearer tokens resolved to a `Principal`, and scope checks.

The management API accepts two kinds of bearer token, each resolved by a `Verifier`:
personal access tokens (``llpat_…``, `liftlog.catalog.tokens`) and OAuth 2.0 access tokens
issued by liftlog's authorization server (`liftlog.api.oauth`). A verifier returns None for a
token it does not recognise, so the next one can try; it raises `Unauthorized` for one it
recognises but refuses (revoked, expired).

Scopes: ``read`` allows GET; ``write`` allows every method and implies ``read``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from liftlog.errors import Forbidden, Unauthorized


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "pat" | "oauth"
    subject: str  # token id, or "<client_id>:<token id>" for OAuth
    account_id: int
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or (scope == "read" and "write" in self.scopes)


Verifier = Callable[[str], Principal | None]


def bearer_secret(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("Send a bearer token: Authorization: Bearer <token>.")
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    return secret.strip()


def authenticate(authorization: str | None, verifiers: Sequence[Verifier], scope: str) -> Principal:
    """Resolve the header to a principal that holds ``scope``, or raise 401/403."""
    secret = bearer_secret(authorization)
    for verify in verifiers:
        principal = verify(secret)
        if principal is not None:
            if not principal.allows(scope):
                raise Forbidden(f"This token does not have the '{scope}' scope.")
            return principal
    raise Unauthorized("The bearer token is not valid.")
