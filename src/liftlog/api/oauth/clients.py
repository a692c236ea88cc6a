"""Registering OAuth clients from Python (the CLI), with the same checks as the REST endpoint."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from liftlog.catalog.oauth import OAuthStore, RegisteredClient

if TYPE_CHECKING:
    from liftlog.catalog.store import Catalog


def register_client(
    catalog: Catalog,
    name: str,
    redirect_uris: Iterable[str],
    scopes: Iterable[str] = ("read",),
    public: bool = False,
    *,
    account_id: int | None = None,
) -> RegisteredClient:
    """Register a client for `account_id` (default: the default account).

    A confidential client gets a secret (``llcs_…``), shown only in the result; a public one
    (`public=True`: native or browser apps that can't keep a secret) gets none and relies on PKCE.
    Invalid input raises `InvalidInput` / `Unprocessable` naming the field, as the API does.
    """
    metadata = {
        "client_name": name,
        "redirect_uris": list(redirect_uris),
        "scope": " ".join(scopes),
        "token_endpoint_auth_method": "none" if public else "client_secret_basic",
    }
    return OAuthStore.of(catalog).register_client(metadata, account_id=account_id)


def delete_client(catalog: Catalog, client_id: str, *, account_id: int) -> None:
    """Revoke a client and every token issued to it."""
    OAuthStore.of(catalog).delete_client(client_id, account_id=account_id)
