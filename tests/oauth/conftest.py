"""OAuth fixtures: the catalog on SQLite and PostgreSQL (from the catalog tests), and a real HTTP
server on loopback serving the OAuth routes plus one protected route, as the app will mount them."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liftlog.api.auth import Principal, Verifier, authenticate
from liftlog.api.errors import error_status_headers_body
from liftlog.api.oauth import oauth_routes, oauth_verifier, register_client
from liftlog.catalog.oauth import RegisteredClient
from liftlog.catalog.store import Catalog
from liftlog.catalog.tokens import PREFIX as PAT_PREFIX
from liftlog.errors import LiftlogError
from tests.catalog import conftest as catalog_fixtures

# The catalog on SQLite and on PostgreSQL, exactly as the catalog's own tests get it.
backend = catalog_fixtures.backend
catalog_url = catalog_fixtures.catalog_url
clock = catalog_fixtures.clock
catalog = catalog_fixtures.catalog
pg_cluster = catalog_fixtures.pg_cluster
pg_migrated = catalog_fixtures.pg_migrated

REDIRECT = "http://127.0.0.1:9/callback"  # never contacted: the test reads the 302 itself


def pat_verifier(catalog: Catalog) -> Verifier:
    """Personal access tokens, resolved as the management API will resolve them."""

    def verify(secret: str) -> Principal | None:
        if not secret.startswith(PAT_PREFIX):
            return None
        token = catalog.tokens.authenticate(secret, "read")
        return Principal("pat", str(token.id), token.account_id, frozenset({token.scope}))

    return verify


def build_app(catalog: Catalog | None) -> Starlette:
    """The OAuth routes and a protected route, given the catalog the way the application gives
    it: through a function, since the application opens its catalog in its lifespan."""
    verifiers = [pat_verifier(catalog), oauth_verifier(lambda: catalog)] if catalog else []

    async def protected(request: Request) -> Response:
        scope = "read" if request.method == "GET" else "write"
        header = request.headers.get("authorization")
        principal = await run_in_threadpool(authenticate, header, verifiers, scope)
        return JSONResponse(
            {
                "kind": principal.kind,
                "subject": principal.subject,
                "account_id": principal.account_id,
                "scopes": sorted(principal.scopes),
            }
        )

    async def liftlog_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LiftlogError)
        status, _, body = error_status_headers_body(exc)
        return Response(body, status, media_type="application/json")

    return Starlette(
        routes=[
            *oauth_routes(lambda: catalog, verifiers),
            Route("/protected", protected, methods=["GET", "POST"]),
        ],
        exception_handlers={LiftlogError: liftlog_error},
    )


@pytest.fixture
def base_url(catalog: Catalog) -> Iterator[str]:
    with serve(build_app(catalog)) as url:
        yield url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """A uvicorn server in a thread on a free loopback port."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10, follow_redirects=False) as client:
        yield client


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def make(cls, seed: str = "") -> Pkce:
        verifier = hashlib.sha256(f"verifier{seed}".encode()).hexdigest()  # 64 chars, allowed set
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).decode().rstrip("="))


def authorize_params(
    client_id: str, pkce: Pkce, *, scope: str = "read", state: str = "st-1", **extra: str
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return {k: v for k, v in params.items() if v != ""}


def request_id(page: str) -> str:
    found = re.search(r'name="request_id" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def approve(
    http: httpx.Client, params: dict[str, str], pat: str, decision: str = "approve"
) -> httpx.Response:
    """Open the consent page, then submit its form as the resource owner would."""
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    form = {"request_id": request_id(page.text), "token": pat, "decision": decision}
    return http.post("/oauth/authorize", data=form)


def get_code(
    http: httpx.Client, client_id: str, pkce: Pkce, pat: str, *, scope: str = "read"
) -> str:
    query = redirect_params(approve(http, authorize_params(client_id, pkce, scope=scope), pat))
    assert query["state"] == "st-1"
    return query["code"]


def exchange(
    http: httpx.Client, client: RegisteredClient, code: str, pkce: Pkce, **overrides: str
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": pkce.verifier,
        **overrides,
    }
    return token_request(http, client, form)


def refresh(http: httpx.Client, client: RegisteredClient, refresh_token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return token_request(http, client, form)


def token_request(
    http: httpx.Client, client: RegisteredClient, form: dict[str, str], path: str = "/oauth/token"
) -> httpx.Response:
    """A client's call to the token or revocation endpoint: HTTP Basic for a confidential
    client, `client_id` in the form for a public one."""
    form = {k: v for k, v in form.items() if v != ""}
    if client.secret is None:
        return http.post(path, data={**form, "client_id": client.client.client_id})
    return http.post(path, data=form, auth=(client.client.client_id, client.secret))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def confidential(catalog: Catalog) -> RegisteredClient:
    return register_client(catalog, "Acme Lists", [REDIRECT], ["read", "write"])


@pytest.fixture
def read_pat(catalog: Catalog) -> str:
    return catalog.tokens.create("owner-read", "read").secret


@pytest.fixture
def write_pat(catalog: Catalog) -> str:
    return catalog.tokens.create("owner-write", "write").secret
