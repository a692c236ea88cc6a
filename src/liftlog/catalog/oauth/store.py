"""OAuth 2.0 storage: registered clients, consent forms shown, authorization codes and tokens.

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
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from liftlog.catalog import schema
from liftlog.catalog.oauth.records import (
    AUTH_METHODS,
    CLIENT_SECRET_PREFIX,
    CODE_TTL_MS,
    CONSENT_TTL_MS,
    MAX_REDIRECT_URIS,
    PURGE_AFTER_MS,
    REFRESH_TTL_MS,
    SCOPES,
    SECRET_BYTES,
    AuthorizationCode,
    OAuthClient,
    OAuthToken,
    RegisteredClient,
    client_record,
    code_record,
    normal_scope,
    redirect_uri_problem,
    token_record,
)
from liftlog.catalog.projects import Accounts
from liftlog.catalog.repo import Repository, fetch, new_id
from liftlog.catalog.tokens import digest
from liftlog.catalog.validate import Checker, present
from liftlog.errors import Conflict, NotFound, Unauthorized

if TYPE_CHECKING:
    from liftlog.catalog.store import Catalog

C = schema.oauth_clients
R = schema.oauth_requests
K = schema.oauth_codes
T = schema.oauth_tokens

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
                    auth_method=method or "client_secret_basic",
                )
            )
            return RegisteredClient(client_record(fetch(conn, C, row_id, "OAuth client")), secret)

    def client(self, client_id: str) -> OAuthClient | None:
        """The active client with this identifier."""
        with self.reading() as conn:
            row = conn.execute(select(C).where(C.c.client_id == client_id)).mappings().first()
        return None if row is None or row["revoked"] is not None else client_record(row)

    def clients(self, account_id: int) -> list[OAuthClient]:
        """The account's active clients, oldest first."""
        query = (
            select(C).where(C.c.account_id == account_id, C.c.revoked.is_(None)).order_by(C.c.id)
        )
        with self.reading() as conn:
            return [client_record(r) for r in conn.execute(query).mappings()]

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
            return client_record(fetch(conn, C, row["id"], "OAuth client"))

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
        conn.execute(delete(R).where(R.c.expires <= now - PURGE_AFTER_MS))
        conn.execute(delete(K).where(K.c.expires <= now - PURGE_AFTER_MS))

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
            return code_record(fetch(conn, K, code_id, "authorization code"))

    def find_code(self, code: str, client: OAuthClient) -> AuthorizationCode | None:
        """The unspent, unexpired code issued to `client`. A spent one revokes its grant."""
        with self.reading() as conn:
            row = conn.execute(select(K).where(K.c.code_sha256 == digest(code))).mappings().first()
        if row is None or row["oauth_client_id"] != client.id:
            return None
        if row["used"] is not None:
            self.revoke_grant(row["id"])
            return None
        return None if row["expires"] <= self.ctx.clock() else code_record(row)

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
                return token_record(row)
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
        token = token_record(row)
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
                    return token_record(row)
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
        token = token_record(row)
        if token.revoked is not None or row["client_revoked"] is not None:
            raise Unauthorized("the OAuth access token was revoked")
        if token.expires <= self.ctx.clock():
            raise Unauthorized("the OAuth access token has expired; refresh it")
        return token
