"""OAuth records as stored, and the rules for their values (scopes, redirect URIs).

Limits: access tokens live `ACCESS_TTL_S`; codes `CODE_TTL_MS`; consent forms `CONSENT_TTL_MS`;
refresh tokens `REFRESH_TTL_MS` from their issue (each refresh issues a new one).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import RowMapping

from liftlog.catalog.tokens import digest

ACCESS_PREFIX = "lloat_"
REFRESH_PREFIX = "llort_"
CLIENT_SECRET_PREFIX = "llcs_"
SECRET_BYTES = 32
SCOPES = ("read", "write")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
MAX_REDIRECT_URIS = 10
ACCESS_TTL_S = 3600
# RFC 6749 §4.1.2 recommends at most 10 minutes for a code; a person may read a consent page longer.
CODE_TTL_MS = 10 * 60_000
CONSENT_TTL_MS = 30 * 60_000
REFRESH_TTL_MS = 30 * 86_400_000
# Spent and expired codes and consent forms are deleted this long after they expire.
PURGE_AFTER_MS = 86_400_000


def normal_scope(scope: str) -> str:
    """Scopes as one canonical string, sorted, each once: ``"write read"`` -> ``"read write"``."""
    return " ".join(sorted(set(scope.split())))


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` can't be a redirect URI, or None: https, or http on loopback (RFC 8252 §7.3)."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return "must be an absolute URI"
    if parts.fragment or uri.endswith("#"):
        return "must not have a fragment"
    if not host:
        return "must be an absolute URI with a host"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if host == "localhost":
            return None
        try:
            if ipaddress.ip_address(host).is_loopback:
                return None
        except ValueError:
            pass
        return "http is only allowed for loopback addresses; use https"
    return "must use https (or http on a loopback address)"


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """A registered client. Public clients (native and browser apps) have no secret."""

    id: int
    account_id: int
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    scope: str
    created: int
    revoked: int | None
    #: The token endpoint authentication method it registered with (`AUTH_METHODS`).
    auth_method: str
    secret_sha256: str | None = field(repr=False)

    @property
    def public(self) -> bool:
        return self.secret_sha256 is None

    def check_secret(self, secret: str) -> bool:
        if self.secret_sha256 is None:
            return False
        return hmac.compare_digest(digest(secret), self.secret_sha256)

    def to_dict(self) -> dict[str, Any]:
        """Client metadata with RFC 7591 names."""
        return {
            "client_id": self.client_id,
            "client_name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "scope": self.scope,
            "token_endpoint_auth_method": self.auth_method,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_id_issued_at": self.created // 1000,
            "account_id": self.account_id,
        }


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    """The result of registering: the secret (None for a public client) is shown this once."""

    client: OAuthClient
    secret: str | None

    def to_dict(self) -> dict[str, Any]:
        body = self.client.to_dict()
        if self.secret is not None:
            body["client_secret"] = self.secret
            body["client_secret_expires_at"] = 0  # RFC 7591: never expires
        return body


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    id: int
    oauth_client_id: int
    account_id: int
    redirect_uri: str | None
    scope: str
    code_challenge: str
    code_challenge_method: str
    expires: int
    used: int | None


@dataclass(frozen=True, slots=True)
class OAuthToken:
    """An issued access token and its refresh token, as stored (never the secrets)."""

    id: int
    oauth_client_id: int
    client_id: str
    account_id: int
    grant_id: int
    scope: str
    issued: int
    expires_in: int
    refresh_expires: int | None
    rotated: int | None
    revoked: int | None

    @property
    def expires(self) -> int:
        return self.issued + self.expires_in * 1000


def client_record(row: RowMapping) -> OAuthClient:
    return OAuthClient(
        id=row["id"],
        account_id=row["account_id"],
        client_id=row["client_id"],
        name=row["name"],
        redirect_uris=tuple(json.loads(row["redirect_uris"])),
        scope=row["scope"],
        created=row["created"],
        revoked=row["revoked"],
        auth_method=row["auth_method"],
        secret_sha256=row["secret_sha256"],
    )


def code_record(row: RowMapping) -> AuthorizationCode:
    return AuthorizationCode(**{f: row[f] for f in AuthorizationCode.__dataclass_fields__})


def token_record(row: RowMapping) -> OAuthToken:
    return OAuthToken(**{f: row[f] for f in OAuthToken.__dataclass_fields__})
