"""The catalog's OAuth records seen through Authlib's model interfaces (RFC 6749 mixins)."""

from __future__ import annotations

from dataclasses import dataclass

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    AuthorizationCodeMixin,
    ClientMixin,
    TokenMixin,
)

from liftlog.catalog.oauth import AuthorizationCode, OAuthClient, OAuthToken, normal_scope

GRANT_TYPES = ("authorization_code", "refresh_token")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True, slots=True)
class Owner:
    """The resource owner a grant is made for: until liftlog has users, an account."""

    account_id: int


class Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, record: OAuthClient) -> None:
        self.record = record

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous default: with several registered URIs the client must name one.
        uris = self.record.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scope if the client may ask for all of it (None: invalid_scope); the
        client's registered scope when none is requested (RFC 6749 §3.3)."""
        if not scope:
            return self.record.scope
        if set(scope.split()) - set(self.record.scope.split()):
            return None
        return normal_scope(scope)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.record.redirect_uris  # exact match (RFC 9700 §4.1.3)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.record.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none" if self.record.public else method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES


class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    def __init__(self, record: AuthorizationCode) -> None:
        self.record = record
        # Read by Authlib's CodeChallenge extension.
        self.code_challenge = record.code_challenge
        self.code_challenge_method = record.code_challenge_method

    def get_redirect_uri(self) -> str | None:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope


class Token(TokenMixin):  # type: ignore[misc]
    def __init__(self, record: OAuthToken, now: int) -> None:
        self.record = record
        self.now = now

    def check_client(self, client: Client) -> bool:
        return self.record.oauth_client_id == client.record.id

    def get_scope(self) -> str:
        return self.record.scope

    def get_expires_in(self) -> int:
        return self.record.expires_in

    def is_expired(self) -> bool:
        return self.record.expires <= self.now

    def is_revoked(self) -> bool:
        return self.record.revoked is not None

    def get_user(self) -> Owner:
        return Owner(self.record.account_id)
