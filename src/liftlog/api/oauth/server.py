"""liftlog's OAuth 2.0 authorization server: Authlib's protocol code on the catalog's storage.

Grants: authorization code (RFC 6749 §4.1) with PKCE required for every client, S256 only
(RFC 7636; RFC 9700 §2.1.1), and refresh tokens (§6) that rotate on each use. Endpoint: token
revocation (RFC 7009). Clients authenticate with HTTP Basic or form fields (confidential) or
``none`` (public). Access tokens live an hour (`ACCESS_TTL_S`).

This is the framework integration Authlib leaves to its users for Starlette: requests arrive as
`Prepared` objects (already read from the network) and responses leave as Starlette responses.
Every method here does blocking I/O; callers run them in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from authlib.oauth2 import AuthorizationServer  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    AuthorizationCodeGrant,
    InvalidGrantError,
    InvalidRequestError,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator  # type: ignore[import-untyped]
from authlib.oauth2.rfc7009 import RevocationEndpoint  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped]
from starlette.responses import Response

from liftlog.api.oauth.models import Client, Code, Owner, Token
from liftlog.api.oauth.requests import OAuthJsonRequest, OAuthRequest, Prepared
from liftlog.catalog.oauth import (
    ACCESS_PREFIX,
    ACCESS_TTL_S,
    AUTH_METHODS,
    REFRESH_PREFIX,
    SCOPES,
    OAuthStore,
)
from liftlog.catalog.store import Catalog
from liftlog.errors import Conflict, Unavailable

#: A catalog, or a function returning the open catalog (None until the server has opened it).
CatalogSource = Catalog | Callable[[], Catalog | None]


def store_provider(source: CatalogSource) -> Callable[[], OAuthStore]:
    """The OAuth store over the catalog of the moment; 503 while the catalog is not open."""

    def current() -> OAuthStore:
        catalog = source if isinstance(source, Catalog) else source()
        if catalog is None:
            raise Unavailable("The catalog is not open yet.")
        return OAuthStore.of(catalog)

    return current


class StrictCodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, confidential ones included, and only S256 (no ``plain``)."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required: send 'code_challenge' and 'code_challenge_method=S256'."
            )
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be 'S256'.")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)

    @property
    def store(self) -> OAuthStore:
        server: LiftlogAuthorizationServer = self.server
        return server.store

    def generate_authorization_code(self) -> str:
        return self.store.secret()

    def save_authorization_code(self, code: str, request: OAuthRequest) -> None:
        data = request.payload.data
        self.store.save_code(
            code,
            request.client.record,
            account_id=request.user.account_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        record = self.store.find_code(code, client.record)
        return None if record is None else Code(record)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Nothing left to do: `save_token` spent the code in the transaction that stored the
        token, so that two requests with one code can't both get a token."""

    def authenticate_user(self, authorization_code: Code) -> Owner:
        return Owner(authorization_code.record.account_id)


class RotatingRefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def store(self) -> OAuthStore:
        server: LiftlogAuthorizationServer = self.server
        return server.store

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        record = self.store.find_refresh(refresh_token)
        return None if record is None else Token(record, self.store.ctx.clock())

    def authenticate_user(self, refresh_token: Token) -> Owner:
        return Owner(refresh_token.record.account_id)

    def revoke_old_credential(self, refresh_token: Token) -> None:
        """Nothing left to do: `save_token` rotated the old pair out with the new one stored."""


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009. Revoking either token of a pair ends the whole authorization it came from."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)

    @property
    def store(self) -> OAuthStore:
        server: LiftlogAuthorizationServer = self.server
        return server.store

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        record = self.store.find(token_string, token_type_hint)
        return None if record is None else Token(record, self.store.ctx.clock())

    def revoke_token(self, token: Token, request: OAuthRequest) -> None:
        self.store.revoke_grant(token.record.grant_id)


class LiftlogAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, store: Callable[[], OAuthStore]) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self._store = store
        generator = BearerTokenGenerator(
            access_token_generator=self._access_token,
            refresh_token_generator=self._refresh_token,
            expires_generator=ACCESS_TTL_S,
        )
        self.register_token_generator("default", generator)
        self.register_grant(CodeGrant, [StrictCodeChallenge(required=True)])
        self.register_grant(RotatingRefreshGrant)
        self.register_endpoint(Revocation)

    @property
    def store(self) -> OAuthStore:
        return self._store()

    def _access_token(self, **_: Any) -> str:
        return self.store.secret(ACCESS_PREFIX)

    def _refresh_token(self, **_: Any) -> str:
        return self.store.secret(REFRESH_PREFIX)

    def query_client(self, client_id: str) -> Client | None:
        record = self.store.client(client_id)
        return None if record is None else Client(record)

    def save_token(self, token: dict[str, Any], request: OAuthRequest) -> None:
        """Store the pair and, in the same transaction, spend the code or rotate the refresh
        token it was issued for."""
        code: Code | None = request.authorization_code
        previous: Token | None = request.refresh_token
        try:
            self.store.issue(
                request.client.record,
                account_id=request.user.account_id,
                scope=token.get("scope", ""),
                access=token["access_token"],
                refresh=token.get("refresh_token"),
                expires_in=token["expires_in"],
                code=None if code is None else code.record,
                previous=None if previous is None else previous.record,
            )
        except Conflict:
            raise InvalidGrantError(
                "The authorization code or refresh token was already used."
            ) from None

    def create_oauth2_request(self, request: Prepared | OAuthRequest) -> OAuthRequest:
        return request if isinstance(request, OAuthRequest) else OAuthRequest(request)

    def create_json_request(self, request: Prepared) -> OAuthJsonRequest:
        return OAuthJsonRequest(request)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        content = json.dumps(body).encode() if isinstance(body, dict) else str(body).encode()
        return Response(content, status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib announces client authentication and revocation; nothing listens yet."""
