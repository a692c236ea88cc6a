"""The OAuth 2.0 endpoints as Starlette routes, built by `oauth_routes(catalog, verifiers)`.

    GET  /.well-known/oauth-authorization-server   server metadata (RFC 8414)
    POST /oauth/clients                 register a client (personal access token, write scope)
    DELETE /oauth/clients/{client_id}   revoke a client and its tokens
    GET  /oauth/authorize               consent page
    POST /oauth/authorize               the resource owner's decision -> 302 to the client
    POST /oauth/token                   authorization_code (+ PKCE) and refresh_token grants
    POST /oauth/revoke                  RFC 7009

The resource owner is the person signed in to liftlog's pages (the session cookie, checked by
``signed_in``): the consent page offers them Allow and Deny, and the grant is for their account.
Someone not signed in is offered the sign-in page (which comes back here), or may prove who they
are with one of their personal access tokens instead, for a grant that can't exceed its scope.
The form carries a single-use nonce stored server-side with the authorization request's
parameters (`OAuthStore.open_consent`), so a posted form can neither be forged nor replayed nor
change what is being authorized; a signed-in decision also repeats the session's CSRF token.
Client registration and deletion raise `LiftlogError`s, which the application turns into its
JSON error shape; the protocol endpoints answer in OAuth's own format.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import msgspec
from authlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from liftlog.api.auth import Principal, Verifier, authenticate
from liftlog.api.oauth.consent import consent_page, error_page
from liftlog.api.oauth.models import Owner
from liftlog.api.oauth.requests import Prepared, prepare, read_body, stored
from liftlog.api.oauth.server import CatalogSource, LiftlogAuthorizationServer, store_provider
from liftlog.catalog.oauth import AUTH_METHODS, SCOPES, OAuthStore
from liftlog.errors import (
    Forbidden,
    InvalidInput,
    LiftlogError,
    Problem,
    Unauthorized,
    too_deep,
)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


#: Who is signed in to liftlog's pages: (account id, email, session CSRF token), or None.
SignedIn = Callable[[Request], "tuple[int, str, str] | None"]


def _nobody(request: Request) -> tuple[int, str, str] | None:
    return None


class OAuthEndpoints:
    def __init__(
        self, source: CatalogSource, verifiers: Sequence[Verifier], signed_in: SignedIn = _nobody
    ) -> None:
        self.server = LiftlogAuthorizationServer(store_provider(source))
        self.verifiers = verifiers  # not copied: the application may add verifiers later
        self.signed_in = signed_in

    @property
    def store(self) -> OAuthStore:
        return self.server.store

    # Protocol endpoints

    async def authorize(self, request: Request) -> Response:
        who = await run_in_threadpool(self.signed_in, request)
        if request.method == "POST":
            prepared = await prepare(request, with_form=True)
            return await run_in_threadpool(self._decide, prepared, request.url.path, who)
        prepared = await prepare(request, with_form=False)
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return await run_in_threadpool(self._consent, prepared, request.url.path, who, signin=here)

    async def token(self, request: Request) -> Response:
        prepared = await prepare(request, with_form=True)
        return await run_in_threadpool(self._protocol, self.server.create_token_response, prepared)

    async def revoke(self, request: Request) -> Response:
        prepared = await prepare(request, with_form=True)
        return await run_in_threadpool(self._protocol, self._revoke, prepared)

    def _revoke(self, prepared: Prepared) -> Response:
        response: Response = self.server.create_endpoint_response("revocation", prepared)
        return response

    def _protocol(self, endpoint: Any, prepared: Prepared) -> Response:
        try:
            response: Response = endpoint(prepared)
        except OAuth2Error as error:  # raised before Authlib's own handling: insecure transport
            response = self.server.handle_error_response(None, error)
        return response

    def _refuse(self, error: OAuth2Error) -> Response:
        """Redirect the error to the client only if its redirect URI was validated."""
        if error.redirect_uri:
            response: Response = self.server.handle_error_response(None, error)
            return response
        return error_page(error.error, error.description)

    def _consent(
        self,
        prepared: Prepared,
        action: str,
        who: tuple[int, str, str] | None,
        problem: str | None = None,
        status: int = 200,
        signin: str | None = None,
    ) -> Response:
        try:
            grant = self.server.get_consent_grant(prepared)
        except OAuth2Error as error:
            return self._refuse(error)
        params: Mapping[str, str] = grant.request.payload.data
        return consent_page(
            client_name=grant.client.record.name,
            scope=grant.request.scope,
            redirect_uri=grant.redirect_uri,
            action=action,
            request_id=self.store.open_consent(grant.client.record, params),
            problem=problem,
            status=status,
            signed_in_as=None if who is None else who[1],
            csrf=None if who is None else who[2],
            signin_url=None if signin is None else "/ui/signin?next=" + quote(signin, safe=""),
        )

    def _decide(self, posted: Prepared, action: str, who: tuple[int, str, str] | None) -> Response:
        fields = dict(reversed(posted.form))
        params = self.store.take_consent(fields.get("request_id", ""))
        if params is None:
            return error_page(
                "invalid_request", "This consent form has expired or was already used.", 400
            )
        prepared = stored(posted.url, params)
        try:
            grant = self.server.get_consent_grant(prepared)
        except OAuth2Error as error:
            return self._refuse(error)
        owner: Owner | None = None
        if fields.get("decision") == "approve":
            try:
                owner = self._owner(fields, who, grant.request.scope)
            except LiftlogError as exc:
                return self._consent(prepared, action, who, exc.message, exc.status)
        response: Response = self.server.create_authorization_response(
            grant.request, grant_user=owner, grant=grant
        )
        return response

    def _owner(
        self, fields: Mapping[str, str], who: tuple[int, str, str] | None, scope: str
    ) -> Owner:
        """The signed-in user's account (their session's CSRF token in the form), or the account
        of the personal access token in the form if it holds every scope to grant."""
        if "csrf" in fields:
            if who is None or not hmac.compare_digest(who[2].encode(), fields["csrf"].encode()):
                raise Unauthorized("Your session has changed; sign in and try again.")
            return Owner(who[0])
        secret = fields.get("token", "")
        if not secret.strip():
            raise Unauthorized("Enter one of your personal access tokens to allow access.")
        principal = authenticate(f"Bearer {secret.strip()}", self.verifiers, "read")
        if principal.kind != "pat":
            raise Forbidden("Only a personal access token can authorize an application.")
        missing = [s for s in scope.split() if not principal.allows(s)]
        if missing:
            raise Forbidden(
                f"This token does not hold the {' and '.join(missing)} scope, so it can't grant it."
            )
        return Owner(principal.account_id)

    # Client registration (liftlog's JSON errors)

    def _registrar(self, authorization: str | None, scope: str = "write") -> Principal:
        principal = authenticate(authorization, self.verifiers, scope)
        if principal.kind != "pat":
            raise Forbidden("OAuth clients are managed with a personal access token.")
        return principal

    async def list_clients(self, request: Request) -> Response:
        authorization = request.headers.get("authorization")
        return await run_in_threadpool(self._list_clients, authorization)

    def _list_clients(self, authorization: str | None) -> Response:
        """The account's active clients, oldest first, as registered (never their secrets)."""
        principal = self._registrar(authorization, "read")
        clients = self.store.clients(principal.account_id)
        return JSONResponse([c.to_dict() for c in clients], headers=NO_STORE)

    async def create_client(self, request: Request) -> Response:
        body = await read_body(request)
        return await run_in_threadpool(
            self._create_client, request.headers.get("authorization"), body
        )

    def _create_client(self, authorization: str | None, body: bytes) -> Response:
        principal = self._registrar(authorization)
        try:
            metadata = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise InvalidInput("The body is not JSON.", [Problem("$", str(exc))]) from None
        except RecursionError:
            raise too_deep() from None
        registered = self.store.register_client(metadata, account_id=principal.account_id)
        return JSONResponse(registered.to_dict(), status_code=201, headers=NO_STORE)

    async def delete_client(self, request: Request) -> Response:
        client_id: str = request.path_params["client_id"]
        authorization = request.headers.get("authorization")
        await run_in_threadpool(self._delete_client, authorization, client_id)
        return Response(status_code=204)

    def _delete_client(self, authorization: str | None, client_id: str) -> None:
        principal = self._registrar(authorization)
        self.store.delete_client(client_id, account_id=principal.account_id)

    async def metadata(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/oauth/authorize",
                "token_endpoint": f"{base}/oauth/token",
                "revocation_endpoint": f"{base}/oauth/revoke",
                "registration_endpoint": f"{base}/oauth/clients",
                "scopes_supported": list(SCOPES),
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
                "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
            }
        )


def oauth_routes(
    catalog: CatalogSource, verifiers: Sequence[Verifier], signed_in: SignedIn = _nobody
) -> list[BaseRoute]:
    """The authorization server's routes. `catalog` is the catalog or a function returning the
    open one (None until it is open: 503). `verifiers` authenticate the personal access tokens
    that manage clients and may approve grants (OAuth access tokens among them are refused
    there); `signed_in` says who is signed in to the pages, who may approve grants too."""
    endpoints = OAuthEndpoints(catalog, verifiers, signed_in)
    return [
        Route("/.well-known/oauth-authorization-server", endpoints.metadata, methods=["GET"]),
        Route("/oauth/clients", endpoints.create_client, methods=["POST"]),
        Route("/oauth/clients", endpoints.list_clients, methods=["GET"]),
        Route("/oauth/clients/{client_id}", endpoints.delete_client, methods=["DELETE"]),
        Route("/oauth/authorize", endpoints.authorize, methods=["GET", "POST"]),
        Route("/oauth/token", endpoints.token, methods=["POST"]),
        Route("/oauth/revoke", endpoints.revoke, methods=["POST"]),
    ]
