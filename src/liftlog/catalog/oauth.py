"""OAuth 2.0 state: registered clients, consent forms shown, authorization codes and tokens.

The protocol rules live in `liftlog.api.oauth` (on Authlib); this module keeps the state and makes
each step atomic. Every secret (client secret, consent nonce, code, access and refresh token) is
32 random bytes in URL-safe base64 and only its SHA-256 is stored, as for personal access tokens.

Single use is a conditional UPDATE (``... WHERE used IS NULL``), so two requests racing with the
same code or refresh token cannot both win. A code or refresh token presented again after it was
spent revokes every token of its grant (RFC 6749 §4.1.2, RFC 9700 §4.14.2): a replay means that
someone else holds a copy.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.engine import RowMapping

from liftlog.catalog import schema
from liftlog.catalog.projects import Accounts
from liftlog.catalog.repo import Repository, fetch, new_id
from liftlog.catalog.tokens import digest
from liftlog.catalog.validate import Checker, present
from liftlog.errors import Conflict, NotFound, Unauthorized

if TYPE_CHECKING:
    from liftlog.catalog.store import Catalog

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

C = schema.oauth_clients
R = schema.oauth_requests
K = schema.oauth_codes
T = schema.oauth_tokens


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
            "token_endpoint_auth_method": "none" if self.public else "client_secret_basic",
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


def _client(row: RowMapping) -> OAuthClient:
    return OAuthClient(
        id=row["id"],
        account_id=row["account_id"],
        client_id=row["client_id"],
        name=row["name"],
        redirect_uris=tuple(json.loads(row["redirect_uris"])),
        scope=row["scope"],
        created=row["created"],
        revoked=row["revoked"],
        secret_sha256=row["secret_sha256"],
    )


def _code(row: RowMapping) -> AuthorizationCode:
    return AuthorizationCode(**{f: row[f] for f in AuthorizationCode.__dataclass_fields__})


def _token(row: RowMapping) -> OAuthToken:
    return OAuthToken(**{f: row[f] for f in OAuthToken.__dataclass_fields__})


_TOKENS = select(T, C.c.client_id).join(C, C.c.id == T.c.oauth_client_id)


class _Spent(Exception):
    """A code or refresh token was spent by a concurrent request: roll back, then revoke."""


class OAuthStore(Repository):
    @classmethod
    def of(cls, catalog: Catalog) -> OAuthStore:
        """The store over a catalog's engine, clock and randomness."""
        return cls(catalog.tokens.ctx)

    def secret(self, prefix: str = "") -> str:
        raw = self.ctx.randbytes(SECRET_BYTES)
        return prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    # Clients

    def register_client(
        self, body: Mapping[str, Any], *, account_id: int | None = None
    ) -> RegisteredClient:
        """Register from RFC 7591 metadata: `client_name`, `redirect_uris`, `scope` (default
        ``read``), `token_endpoint_auth_method` (``none`` makes a public client)."""
        check = Checker(body)
        check.allow_only(["client_name", "redirect_uris", "scope", "token_endpoint_auth_method"])
        name = check.string("client_name", required=True, empty=False)
        uris = check.array("redirect_uris", required=True) or []
        if check.has("redirect_uris") and not 1 <= len(uris) <= MAX_REDIRECT_URIS:
            check.breaks(check.at("redirect_uris"), f"must hold 1 to {MAX_REDIRECT_URIS} URIs")
        for i, uri in enumerate(uris):
            path = f"{check.at('redirect_uris')}[{i}]"
            if not isinstance(uri, str):
                check.bad(path, "must be a string")
            elif len(uri) > 2000:
                check.breaks(path, "must be at most 2000 characters")
            elif (problem := redirect_uri_problem(uri)) is not None:
                check.breaks(path, problem)
        scope = check.string("scope", max_len=64)
        if scope is not None and (not scope.split() or set(scope.split()) - set(SCOPES)):
            check.breaks(check.at("scope"), f"must be made of {' and '.join(SCOPES)}")
        method = check.choice("token_endpoint_auth_method", AUTH_METHODS)
        check.raise_if_any("OAuth client")

        secret = None if method == "none" else self.secret(CLIENT_SECRET_PREFIX)
        owner = account_id if account_id is not None else Accounts(self.ctx).default().id
        with self.transaction() as conn:
            fetch(conn, schema.accounts, owner, "account")
            row_id = new_id(conn, "oauth_client")
            conn.execute(
                insert(C).values(
                    id=row_id,
                    account_id=owner,
                    client_id=self.secret()[:32],
                    secret_sha256=None if secret is None else digest(secret),
                    name=present(name),
                    redirect_uris=json.dumps(list(dict.fromkeys(uris))),
                    scope=normal_scope(scope or "read"),
                    created=self.ctx.clock(),
                    revoked=None,
                )
            )
            return RegisteredClient(_client(fetch(conn, C, row_id, "OAuth client")), secret)

    def client(self, client_id: str) -> OAuthClient | None:
        """The active client with this identifier."""
        with self.reading() as conn:
            row = conn.execute(select(C).where(C.c.client_id == client_id)).mappings().first()
        return None if row is None or row["revoked"] is not None else _client(row)

    def clients(self, account_id: int) -> list[OAuthClient]:
        """The account's active clients, oldest first."""
        query = (
            select(C).where(C.c.account_id == account_id, C.c.revoked.is_(None)).order_by(C.c.id)
        )
        with self.reading() as conn:
            return [_client(r) for r in conn.execute(query).mappings()]

    def delete_client(self, client_id: str, *, account_id: int) -> OAuthClient:
        """Revoke the client and every token issued to it. Another account's client is NotFound."""
        now = self.ctx.clock()
        with self.transaction() as conn:
            row = conn.execute(select(C).where(C.c.client_id == client_id)).mappings().first()
            if row is None or row["account_id"] != account_id or row["revoked"] is not None:
                raise NotFound(f"OAuth client {client_id} not found")
            conn.execute(update(C).where(C.c.id == row["id"]).values(revoked=now))
            conn.execute(
                update(T)
                .where(T.c.oauth_client_id == row["id"], T.c.revoked.is_(None))
                .values(revoked=now)
            )
            return _client(fetch(conn, C, row["id"], "OAuth client"))

    # Consent forms

    def open_consent(self, client: OAuthClient, params: Mapping[str, str]) -> str:
        """Remember the authorization request behind a consent form; returns the form's nonce."""
        nonce = self.secret()
        now = self.ctx.clock()
        with self.transaction() as conn:
            self._purge(conn, now)
            conn.execute(
                insert(R).values(
                    id=new_id(conn, "oauth_request"),
                    oauth_client_id=client.id,
                    nonce_sha256=digest(nonce),
                    params=json.dumps(dict(params), sort_keys=True),
                    created=now,
                    expires=now + CONSENT_TTL_MS,
                    used=None,
                )
            )
        return nonce

    def take_consent(self, nonce: str) -> dict[str, str] | None:
        """The request parameters behind a consent form, once; None if unknown, spent or expired."""
        now = self.ctx.clock()
        with self.transaction() as conn:
            row = (
                conn.execute(select(R).where(R.c.nonce_sha256 == digest(nonce))).mappings().first()
            )
            if row is None or row["expires"] <= now:
                return None
            spent = conn.execute(
                update(R).where(R.c.id == row["id"], R.c.used.is_(None)).values(used=now)
            )
            if spent.rowcount != 1:
                return None
            params: dict[str, str] = json.loads(row["params"])
            return params

    def _purge(self, conn: Connection, now: int) -> None:
        conn.execute(delete(R).where(R.c.expires < now - PURGE_AFTER_MS))
        conn.execute(delete(K).where(K.c.expires < now - PURGE_AFTER_MS))

    # Authorization codes

    def save_code(
        self,
        code: str,
        client: OAuthClient,
        *,
        account_id: int,
        redirect_uri: str | None,
        scope: str,
        code_challenge: str,
        code_challenge_method: str,
    ) -> AuthorizationCode:
        now = self.ctx.clock()
        with self.transaction() as conn:
            code_id = new_id(conn, "oauth_code")
            conn.execute(
                insert(K).values(
                    id=code_id,
                    oauth_client_id=client.id,
                    account_id=account_id,
                    code_sha256=digest(code),
                    redirect_uri=redirect_uri,
                    scope=normal_scope(scope),
                    code_challenge=code_challenge,
                    code_challenge_method=code_challenge_method,
                    created=now,
                    expires=now + CODE_TTL_MS,
                    used=None,
                )
            )
            return _code(fetch(conn, K, code_id, "authorization code"))

    def find_code(self, code: str, client: OAuthClient) -> AuthorizationCode | None:
        """The unspent, unexpired code issued to `client`. A spent one revokes its grant."""
        with self.reading() as conn:
            row = conn.execute(select(K).where(K.c.code_sha256 == digest(code))).mappings().first()
        if row is None or row["oauth_client_id"] != client.id:
            return None
        if row["used"] is not None:
            self.revoke_grant(row["id"])
            return None
        return None if row["expires"] <= self.ctx.clock() else _code(row)

    # Tokens

    def issue(
        self,
        client: OAuthClient,
        *,
        account_id: int,
        scope: str,
        access: str,
        refresh: str | None,
        expires_in: int,
        code: AuthorizationCode | None = None,
        previous: OAuthToken | None = None,
    ) -> OAuthToken:
        """Store a new token pair, spending the `code` or the `previous` refresh token with it.

        Raises Conflict when that code or refresh token was spent meanwhile (and revokes its grant).
        """
        if (code is None) == (previous is None):
            raise ValueError("a token is issued for exactly one code or one refresh token")
        grant_id = code.id if code is not None else present(previous).grant_id
        now = self.ctx.clock()
        try:
            with self.transaction() as conn:
                if code is not None:
                    spend = update(K).where(K.c.id == code.id, K.c.used.is_(None)).values(used=now)
                else:
                    spend = (
                        update(T)
                        .where(
                            T.c.id == present(previous).id,
                            T.c.rotated.is_(None),
                            T.c.revoked.is_(None),
                        )
                        .values(rotated=now, revoked=now)
                    )
                if conn.execute(spend).rowcount != 1:
                    raise _Spent
                token_id = new_id(conn, "oauth_token")
                conn.execute(
                    insert(T).values(
                        id=token_id,
                        oauth_client_id=client.id,
                        account_id=account_id,
                        grant_id=grant_id,
                        access_sha256=digest(access),
                        refresh_sha256=None if refresh is None else digest(refresh),
                        scope=normal_scope(scope),
                        issued=now,
                        expires_in=expires_in,
                        refresh_expires=None if refresh is None else now + REFRESH_TTL_MS,
                        rotated=None,
                        revoked=None,
                    )
                )
                row = conn.execute(_TOKENS.where(T.c.id == token_id)).mappings().one()
                return _token(row)
        except _Spent:
            self.revoke_grant(grant_id)
            raise Conflict("the authorization code or refresh token was already used") from None

    def find_refresh(self, refresh: str) -> OAuthToken | None:
        """The live token pair holding this refresh token. A rotated one revokes its grant."""
        with self.reading() as conn:
            row = (
                conn.execute(
                    _TOKENS.where(T.c.refresh_sha256 == digest(refresh), C.c.revoked.is_(None))
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        token = _token(row)
        if token.rotated is not None:
            self.revoke_grant(token.grant_id)
            return None
        if token.revoked is not None or (token.refresh_expires or 0) <= self.ctx.clock():
            return None
        return token

    def find(self, secret: str, hint: str | None = None) -> OAuthToken | None:
        """The token pair holding `secret` as access or refresh token (RFC 7009 lookup; the hint
        only says which to try first)."""
        columns = [T.c.access_sha256, T.c.refresh_sha256]
        if hint == "refresh_token":
            columns.reverse()
        with self.reading() as conn:
            for column in columns:
                row = conn.execute(_TOKENS.where(column == digest(secret))).mappings().first()
                if row is not None:
                    return _token(row)
        return None

    def revoke_grant(self, grant_id: int) -> None:
        """Revoke every token issued under one authorization (its code and all refreshes)."""
        with self.transaction() as conn:
            conn.execute(
                update(T)
                .where(and_(T.c.grant_id == grant_id, T.c.revoked.is_(None)))
                .values(revoked=self.ctx.clock())
            )

    def authenticate(self, access: str) -> OAuthToken:
        """The live token for an access token; Unauthorized if unknown, revoked or expired."""
        with self.reading() as conn:
            row = (
                conn.execute(
                    _TOKENS.add_columns(C.c.revoked.label("client_revoked")).where(
                        T.c.access_sha256 == digest(access)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise Unauthorized("unknown OAuth access token")
        token = _token(row)
        if token.revoked is not None or row["client_revoked"] is not None:
            raise Unauthorized("the OAuth access token was revoked")
        if token.expires <= self.ctx.clock():
            raise Unauthorized("the OAuth access token has expired; refresh it")
        return token
