"""Personal access tokens for the management API, and datafile access tokens.

Scopes: ``read`` (GET on the management API), ``write`` (every method; implies ``read``) and
``datafile`` (only ``GET /datafiles/auth/{sdk_key}.json`` of the account's projects, what an SDK
holds as its ``datafile_access_token``; it implies nothing else, and nothing implies it, so a
secret that ships inside an application can never change the catalog).

A token is ``llpat_`` followed by 32 random bytes in URL-safe base64 (256 bits). Only its SHA-256
is stored: with that much entropy a fast hash is as safe as a slow one, and it lets a request be
authenticated with one indexed lookup. The secret is returned once, at creation.
"""

from __future__ import annotations

import base64
import hashlib

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping

from liftlog.catalog import schema
from liftlog.catalog.models import IssuedToken, Page, Token
from liftlog.catalog.projects import Accounts
from liftlog.catalog.repo import DEFAULT_PER_PAGE, Repository, fetch, new_id, page_rows
from liftlog.catalog.scopes import TOKEN_SCOPES
from liftlog.catalog.validate import Checker
from liftlog.errors import Forbidden, Unauthorized

PREFIX = "llpat_"
SECRET_BYTES = 32
# `last_used` is rewritten at most once a minute per token, not on every request.
LAST_USED_RESOLUTION_MS = 60_000
T = schema.tokens


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def grants(held: str, needed: str) -> bool:
    """Does a token of scope `held` allow `needed`? Only ``write`` implies another (``read``)."""
    return held == needed or (held == "write" and needed == "read")


def _token(row: RowMapping) -> Token:
    return Token(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        scope=row["scope"],
        prefix=row["prefix"],
        created=row["created"],
        last_used=row["last_used"],
        revoked=row["revoked"],
    )


class Tokens(Repository):
    def create(self, name: str, scope: str, *, account_id: int | None = None) -> IssuedToken:
        """Issue a token; `write` also allows reading. The secret is in the result only."""
        check = Checker({"name": name, "scope": scope})
        check.string("name", required=True, empty=False)
        check.choice("scope", TOKEN_SCOPES, required=True)
        check.raise_if_any("token")
        owner = account_id if account_id is not None else Accounts(self.ctx).default().id
        raw = self.ctx.randbytes(SECRET_BYTES)
        secret = PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")
        now = self.ctx.clock()
        with self.transaction() as conn:
            fetch(conn, schema.accounts, owner, "account")
            token_id = new_id(conn, "token")
            conn.execute(
                insert(T).values(
                    id=token_id,
                    account_id=owner,
                    name=name,
                    scope=scope,
                    prefix=secret[: len(PREFIX) + 6],
                    secret_sha256=digest(secret),
                    created=now,
                    last_used=None,
                    revoked=None,
                )
            )
            return IssuedToken(_token(fetch(conn, T, token_id, "token")), secret)

    def authenticate(self, secret: str, scope: str = "read") -> Token:
        """The active token for `secret` if it grants `scope`.

        Unknown or revoked secrets raise Unauthorized (401); a token without `scope` (a read
        token asked to write, a datafile token asked to read) raises Forbidden (403).
        """
        if scope not in TOKEN_SCOPES:
            raise ValueError(f"scope must be one of {TOKEN_SCOPES}")
        token = self.verify(secret)
        if not grants(token.scope, scope):
            raise Forbidden(f"token {token.id} has scope {token.scope}, {scope} needed")
        return token

    def verify(self, secret: str) -> Token:
        """The active token for `secret`, whatever its scope; unknown or revoked: Unauthorized.

        Records when the token was last used (at most once a minute).
        """
        with self.transaction() as conn:
            row = (
                conn.execute(select(T).where(T.c.secret_sha256 == digest(secret)))
                .mappings()
                .first()
            )
            if row is None or row["revoked"] is not None:
                raise Unauthorized("unknown or revoked token")
            token = _token(row)
            now = self.ctx.clock()
            if token.last_used is None or now - token.last_used >= LAST_USED_RESOLUTION_MS:
                conn.execute(update(T).where(T.c.id == token.id).values(last_used=now))
                token = _token(fetch(conn, T, token.id, "token"))
            return token

    def get(self, token_id: int) -> Token:
        with self.reading() as conn:
            return _token(fetch(conn, T, token_id, "token"))

    def list(
        self, page: int = 1, per_page: int = DEFAULT_PER_PAGE, *, account_id: int | None = None
    ) -> Page[Token]:
        query = select(T)
        if account_id is not None:
            query = query.where(T.c.account_id == account_id)
        with self.reading() as conn:
            rows, total = page_rows(conn, query, T.c.id, page, per_page)
        return Page(tuple(_token(r) for r in rows), page, per_page, total)

    def revoke(self, token_id: int) -> Token:
        """Revoke for good; revoking twice keeps the first revocation time."""
        with self.transaction() as conn:
            row = fetch(conn, T, token_id, "token")
            if row["revoked"] is None:
                conn.execute(update(T).where(T.c.id == token_id).values(revoked=self.ctx.clock()))
            return _token(fetch(conn, T, token_id, "token"))
