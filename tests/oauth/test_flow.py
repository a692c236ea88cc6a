"""The whole OAuth 2.0 flow as an integration runs it, over HTTP against a real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.routing import Route

from liftlog.api.oauth import oauth_routes, oauth_verifier, openapi_paths
from liftlog.catalog.oauth import RegisteredClient
from liftlog.catalog.store import Catalog
from liftlog.errors import Unavailable

from .conftest import (
    REDIRECT,
    Pkce,
    approve,
    authorize_params,
    bearer,
    build_app,
    exchange,
    redirect_params,
    refresh,
    request_id,
    serve,
    token_request,
)


def test_flow_register_authorize_exchange_call_refresh_revoke(
    http: httpx.Client, catalog: Catalog, read_pat: str, write_pat: str
) -> None:
    # The integration's developer registers it once, with a personal access token.
    created = http.post(
        "/oauth/clients",
        json={"client_name": "Acme <Lists>", "redirect_uris": [REDIRECT], "scope": "read write"},
        headers=bearer(write_pat),
    )
    assert created.status_code == 201, created.text
    registration = created.json()
    client_id, secret = registration["client_id"], registration["client_secret"]
    assert secret.startswith("llcs_")
    assert registration["token_endpoint_auth_method"] == "client_secret_basic"
    assert created.headers["cache-control"] == "no-store"

    # A user of the integration is sent to the consent page, which names the client and scopes.
    pkce = Pkce.make()
    params = authorize_params(client_id, pkce, scope="read", state="opaque-42")
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Acme &lt;Lists&gt;" in page.text and "<Lists>" not in page.text
    assert "<strong>read</strong>" in page.text and "<strong>write</strong>" not in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"

    # They approve with one of their personal access tokens; the browser goes back to the client.
    form = {"request_id": request_id(page.text), "token": read_pat, "decision": "approve"}
    back = redirect_params(http.post("/oauth/authorize", data=form))
    assert back["state"] == "opaque-42"

    # The integration's server exchanges the code, proving PKCE.
    tokens = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": back["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": pkce.verifier,
        },
        auth=(client_id, secret),
    )
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["cache-control"] == "no-store"
    issued = tokens.json()
    assert issued["token_type"] == "Bearer"
    assert issued["expires_in"] == 3600
    assert issued["scope"] == "read"
    assert issued["access_token"].startswith("lloat_")
    assert issued["refresh_token"].startswith("llort_")

    # The access token works on the management API, with the owner's account and read only.
    me = http.get("/protected", headers=bearer(issued["access_token"]))
    assert me.status_code == 200, me.text
    owner = catalog.tokens.list().items[0]
    assert me.json()["kind"] == "oauth"
    assert me.json()["account_id"] == owner.account_id
    assert me.json()["scopes"] == ["read"]
    assert me.json()["subject"].startswith(client_id + ":")
    refused = http.post("/protected", headers=bearer(issued["access_token"]))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"

    # Refreshing rotates both tokens: the previous pair stops working.
    renewed = http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        auth=(client_id, secret),
    )
    assert renewed.status_code == 200, renewed.text
    fresh = renewed.json()
    assert fresh["refresh_token"] != issued["refresh_token"]
    assert fresh["access_token"] != issued["access_token"]
    assert fresh["scope"] == "read"
    assert http.get("/protected", headers=bearer(fresh["access_token"])).status_code == 200
    assert http.get("/protected", headers=bearer(issued["access_token"])).status_code == 401

    # Revoking (RFC 7009) ends the authorization: access and refresh tokens are refused.
    revoked = http.post(
        "/oauth/revoke",
        data={"token": fresh["access_token"], "token_type_hint": "access_token"},
        auth=(client_id, secret),
    )
    assert revoked.status_code == 200, revoked.text
    after = http.get("/protected", headers=bearer(fresh["access_token"]))
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "unauthorized"
    again = http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"]},
        auth=(client_id, secret),
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_flow_write_scope_allows_writing(
    http: httpx.Client, confidential: RegisteredClient, write_pat: str
) -> None:
    pkce = Pkce.make()
    back = redirect_params(approve(http, authorize_params(confidential.client.client_id, pkce,
                                                          scope="write"), write_pat))  # fmt: skip
    issued = exchange(http, confidential, back["code"], pkce).json()
    assert issued["scope"] == "write"
    assert http.post("/protected", headers=bearer(issued["access_token"])).status_code == 200
    assert http.get("/protected", headers=bearer(issued["access_token"])).status_code == 200


def form_client_exchange(
    http: httpx.Client, write_pat: str, read_pat: str, method: str
) -> tuple[dict[str, Any], httpx.Response]:
    """Register a client with ``method``, have ``read_pat``'s owner approve it, and exchange the
    code with the client's credentials in the form (its secret too, when it has one)."""
    metadata = {"client_name": "Acme", "redirect_uris": [REDIRECT]}
    created = http.post(
        "/oauth/clients",
        json={**metadata, "token_endpoint_auth_method": method},
        headers=bearer(write_pat),
    )
    assert created.status_code == 201, created.text
    registration = created.json()
    pkce = Pkce.make(method)
    params = authorize_params(registration["client_id"], pkce)
    back = redirect_params(approve(http, params, read_pat))
    credentials = {"client_id": registration["client_id"]}
    if "client_secret" in registration:
        credentials["client_secret"] = registration["client_secret"]
    form = {"grant_type": "authorization_code", "code": back["code"], "redirect_uri": REDIRECT,
            "code_verifier": pkce.verifier, **credentials}  # fmt: skip
    return registration, http.post("/oauth/token", data=form)


def test_flow_client_secret_post_is_kept_as_registered(
    http: httpx.Client, write_pat: str, read_pat: str
) -> None:
    """RFC 7591: the registration's answer (and the listing) name the method registered with,
    and the client sends its secret in the form."""
    registration, tokens = form_client_exchange(http, write_pat, read_pat, "client_secret_post")
    assert registration["token_endpoint_auth_method"] == "client_secret_post"
    [listed] = http.get("/oauth/clients", headers=bearer(read_pat)).json()
    assert listed["token_endpoint_auth_method"] == "client_secret_post"
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["access_token"].startswith("lloat_")


def test_flow_public_client_uses_pkce_without_a_secret(
    http: httpx.Client, write_pat: str, read_pat: str
) -> None:
    registration, tokens = form_client_exchange(http, write_pat, read_pat, "none")
    assert "client_secret" not in registration
    assert registration["scope"] == "read"  # the default
    client_id = registration["client_id"]
    assert tokens.status_code == 200, tokens.text
    renewed = http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens.json()["refresh_token"],
            "client_id": client_id,
        },
    )
    assert renewed.status_code == 200, renewed.text
    gone = http.post(
        "/oauth/revoke",
        data={"token": renewed.json()["refresh_token"], "client_id": client_id},
    )
    assert gone.status_code == 200
    refused = http.get("/protected", headers=bearer(renewed.json()["access_token"]))
    assert refused.status_code == 401


def test_flow_metadata_document_lists_the_endpoints(http: httpx.Client) -> None:
    meta = http.get("/.well-known/oauth-authorization-server").json()
    assert meta["authorization_endpoint"] == f"{meta['issuer']}/oauth/authorize"
    assert meta["token_endpoint"] == f"{meta['issuer']}/oauth/token"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["scopes_supported"] == ["read", "write"]


def test_flow_token_request_helper_matches_the_spelled_out_calls(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str
) -> None:
    """The helpers used by the negative tests send what the test above spells out."""
    pkce = Pkce.make()
    back = redirect_params(
        approve(http, authorize_params(confidential.client.client_id, pkce), read_pat)
    )
    issued = exchange(http, confidential, back["code"], pkce)
    assert issued.status_code == 200, issued.text
    renewed = refresh(http, confidential, issued.json()["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    revoked = token_request(
        http, confidential, {"token": renewed.json()["access_token"]}, "/oauth/revoke"
    )
    assert revoked.status_code == 200


def test_flow_answers_503_until_the_catalog_is_open() -> None:
    with serve(build_app(None)) as url, httpx.Client(base_url=url, timeout=10) as http:
        token = http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": "x"})
        assert token.status_code == 503
        assert token.json()["error"]["code"] == "unavailable"
        assert http.get("/oauth/authorize", params={"client_id": "x"}).status_code == 503
    with pytest.raises(Unavailable):
        oauth_verifier(lambda: None)("lloat_anything")
    assert oauth_verifier(lambda: None)("llpat_not-ours") is None


def test_flow_openapi_paths_describe_exactly_the_routes() -> None:
    described = {(p, m.upper()) for p, item in openapi_paths().items() for m in item}
    served = {
        (route.path, method)
        for route in oauth_routes(lambda: None, [])
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert described == served
