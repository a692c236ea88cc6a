"""What the authorization server refuses, over HTTP: each case as an integration would hit it."""

from __future__ import annotations

import httpx
import pytest

from liftlog.api.oauth import register_client
from liftlog.catalog.oauth import CODE_TTL_MS, OAuthClient, OAuthStore, RegisteredClient
from liftlog.catalog.store import Catalog
from tests.catalog.conftest import Clock

from .conftest import (
    REDIRECT,
    Pkce,
    approve,
    authorize_params,
    bearer,
    exchange,
    get_code,
    redirect_params,
    refresh,
    request_id,
    token_request,
)


def oauth_error(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    return str(body.get("error_description", ""))


# Token endpoint


def test_token_refuses_a_wrong_code_verifier(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str
) -> None:
    pkce = Pkce.make()
    code = get_code(http, confidential.client.client_id, pkce, read_pat)
    wrong = Pkce.make("someone else")
    oauth_error(exchange(http, confidential, code, wrong), 400, "invalid_grant")


def test_token_refuses_a_missing_code_verifier(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str
) -> None:
    pkce = Pkce.make()
    code = get_code(http, confidential.client.client_id, pkce, read_pat)
    problem = oauth_error(exchange(http, confidential, code, pkce, code_verifier=""), 400,
                          "invalid_request")  # fmt: skip
    assert "code_verifier" in problem


def test_token_refuses_a_reused_code_and_revokes_what_it_gave(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str
) -> None:
    pkce = Pkce.make()
    code = get_code(http, confidential.client.client_id, pkce, read_pat)
    first = exchange(http, confidential, code, pkce)
    assert first.status_code == 200, first.text
    oauth_error(exchange(http, confidential, code, pkce), 400, "invalid_grant")
    # RFC 6749 §4.1.2: a code used twice revokes the tokens issued with it.
    access = first.json()["access_token"]
    assert http.get("/protected", headers=bearer(access)).status_code == 401
    oauth_error(refresh(http, confidential, first.json()["refresh_token"]), 400, "invalid_grant")


def test_token_refuses_a_redirect_uri_other_than_the_authorization_requests(
    catalog: Catalog, http: httpx.Client, read_pat: str
) -> None:
    other = "https://acme.example/other"
    client = register_client(catalog, "Two URIs", [REDIRECT, other], ["read"])
    pkce = Pkce.make()
    code = get_code(http, client.client.client_id, pkce, read_pat)
    oauth_error(exchange(http, client, code, pkce, redirect_uri=other), 400, "invalid_grant")
    assert exchange(http, client, code, pkce).status_code == 200  # the code was not spent


def test_token_refuses_an_expired_code(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str, clock: Clock
) -> None:
    pkce = Pkce.make()
    code = get_code(http, confidential.client.client_id, pkce, read_pat)
    clock.advance(CODE_TTL_MS)
    oauth_error(exchange(http, confidential, code, pkce), 400, "invalid_grant")


def test_token_refuses_a_code_issued_to_another_client(
    catalog: Catalog, http: httpx.Client, confidential: RegisteredClient, read_pat: str
) -> None:
    pkce = Pkce.make()
    code = get_code(http, confidential.client.client_id, pkce, read_pat)
    thief = register_client(catalog, "Thief", [REDIRECT], ["read"])
    oauth_error(exchange(http, thief, code, pkce), 400, "invalid_grant")


@pytest.mark.parametrize(
    "auth",
    [None, ("unknown-client", "llcs_whatever"), ("REPLACE", "llcs_wrong")],
    ids=["no credentials", "unknown client", "wrong secret"],
)
def test_token_refuses_unauthenticated_confidential_clients(
    http: httpx.Client,
    confidential: RegisteredClient,
    read_pat: str,
    auth: tuple[str, str] | None,
) -> None:
    pkce = Pkce.make()
    code = get_code(http, confidential.client.client_id, pkce, read_pat)
    if auth is not None and auth[0] == "REPLACE":
        auth = (confidential.client.client_id, auth[1])
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": pkce.verifier}  # fmt: skip
    if auth is None:
        form["client_id"] = confidential.client.client_id  # a public client's way: not enough
    response = http.post("/oauth/token", data=form, auth=auth)
    assert response.status_code in (400, 401)
    oauth_error(response, response.status_code, "invalid_client")


def test_token_refuses_an_unknown_grant_type(
    http: httpx.Client, confidential: RegisteredClient
) -> None:
    form = {"grant_type": "password", "username": "a", "password": "b"}
    oauth_error(token_request(http, confidential, form), 400, "unsupported_grant_type")


def test_access_token_expires_after_an_hour(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str, clock: Clock
) -> None:
    pkce = Pkce.make()
    code = get_code(http, confidential.client.client_id, pkce, read_pat)
    issued = exchange(http, confidential, code, pkce).json()
    clock.advance(3_599_000)
    assert http.get("/protected", headers=bearer(issued["access_token"])).status_code == 200
    clock.advance(1_000)
    expired = http.get("/protected", headers=bearer(issued["access_token"]))
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]
    renewed = refresh(http, confidential, issued["refresh_token"])
    assert http.get("/protected", headers=bearer(renewed.json()["access_token"])).status_code == 200


def test_replayed_refresh_token_revokes_the_grant(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str
) -> None:
    pkce = Pkce.make()
    code = get_code(http, confidential.client.client_id, pkce, read_pat)
    first = exchange(http, confidential, code, pkce).json()
    second = refresh(http, confidential, first["refresh_token"]).json()
    # The old refresh token no longer works; whoever replays it also ends the new pair
    # (RFC 9700 §4.14.2: one of the two holders is an attacker).
    oauth_error(refresh(http, confidential, first["refresh_token"]), 400, "invalid_grant")
    assert http.get("/protected", headers=bearer(second["access_token"])).status_code == 401
    oauth_error(refresh(http, confidential, second["refresh_token"]), 400, "invalid_grant")


def test_refresh_cannot_widen_the_scope(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str
) -> None:
    pkce = Pkce.make()
    code = get_code(http, confidential.client.client_id, pkce, read_pat)
    issued = exchange(http, confidential, code, pkce).json()
    form = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"],
            "scope": "read write"}  # fmt: skip
    oauth_error(token_request(http, confidential, form), 400, "invalid_scope")


def test_revocation_by_another_client_is_refused(
    catalog: Catalog, http: httpx.Client, confidential: RegisteredClient, read_pat: str
) -> None:
    pkce = Pkce.make()
    code = get_code(http, confidential.client.client_id, pkce, read_pat)
    issued = exchange(http, confidential, code, pkce).json()
    other = register_client(catalog, "Other", [REDIRECT], ["read"])
    response = token_request(http, other, {"token": issued["access_token"]}, "/oauth/revoke")
    oauth_error(response, 400, "invalid_grant")
    assert http.get("/protected", headers=bearer(issued["access_token"])).status_code == 200


def test_revoking_an_unknown_token_is_not_an_error(
    http: httpx.Client, confidential: RegisteredClient
) -> None:
    response = token_request(http, confidential, {"token": "lloat_nothing"}, "/oauth/revoke")
    assert response.status_code == 200  # RFC 7009 §2.2


# Authorization endpoint


def test_authorize_requires_pkce(http: httpx.Client, confidential: RegisteredClient) -> None:
    params = authorize_params(confidential.client.client_id, Pkce.make())
    del params["code_challenge"], params["code_challenge_method"]
    back = redirect_params(http.get("/oauth/authorize", params=params))
    assert back["error"] == "invalid_request"
    assert back["state"] == "st-1"
    assert "PKCE" in back["error_description"]


def test_authorize_refuses_the_plain_challenge_method(
    http: httpx.Client, confidential: RegisteredClient
) -> None:
    params = authorize_params(confidential.client.client_id, Pkce.make())
    params["code_challenge_method"] = "plain"
    assert redirect_params(http.get("/oauth/authorize", params=params))["error"] == (
        "invalid_request"
    )


def test_authorize_shows_an_error_page_for_an_unknown_client(http: httpx.Client) -> None:
    page = http.get("/oauth/authorize", params=authorize_params("no-such-client", Pkce.make()))
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "invalid_client" in page.text


def test_authorize_never_redirects_to_an_unregistered_uri(
    http: httpx.Client, confidential: RegisteredClient
) -> None:
    params = authorize_params(confidential.client.client_id, Pkce.make())
    params["redirect_uri"] = "https://evil.example/steal"
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "evil.example" in page.text  # named in the explanation, escaped, not followed


def test_authorize_refuses_scopes_the_client_was_not_registered_for(
    catalog: Catalog, http: httpx.Client
) -> None:
    reader = register_client(catalog, "Reader", [REDIRECT], ["read"])
    params = authorize_params(reader.client.client_id, Pkce.make(), scope="write")
    assert redirect_params(http.get("/oauth/authorize", params=params))["error"] == "invalid_scope"


def test_authorize_cannot_grant_more_than_the_owners_token_holds(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str, write_pat: str
) -> None:
    params = authorize_params(confidential.client.client_id, Pkce.make(), scope="read write")
    refused = approve(http, params, read_pat)
    assert refused.status_code == 403
    assert "location" not in refused.headers
    assert "write scope" in refused.text
    # The page is shown again with a fresh form, where a token that holds write succeeds.
    form = {"request_id": request_id(refused.text), "token": write_pat, "decision": "approve"}
    back = redirect_params(http.post("/oauth/authorize", data=form))
    assert "code" in back


@pytest.mark.parametrize("token", ["", "llpat_not-a-real-token"], ids=["empty", "unknown"])
def test_authorize_requires_a_valid_personal_access_token(
    http: httpx.Client, confidential: RegisteredClient, token: str
) -> None:
    refused = approve(http, authorize_params(confidential.client.client_id, Pkce.make()), token)
    assert refused.status_code == 401
    assert "location" not in refused.headers


def test_authorize_refuses_an_oauth_access_token_as_the_owners_proof(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str
) -> None:
    pkce = Pkce.make()
    code = get_code(http, confidential.client.client_id, pkce, read_pat)
    access = exchange(http, confidential, code, pkce).json()["access_token"]
    refused = approve(http, authorize_params(confidential.client.client_id, pkce), access)
    assert refused.status_code == 403
    assert "personal access token" in refused.text


def test_authorize_deny_redirects_with_access_denied(
    http: httpx.Client, confidential: RegisteredClient
) -> None:
    params = authorize_params(confidential.client.client_id, Pkce.make())
    back = redirect_params(approve(http, params, "", decision="deny"))
    assert back["error"] == "access_denied"
    assert back["state"] == "st-1"
    assert "code" not in back


def test_authorize_form_needs_its_nonce_once(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str
) -> None:
    params = authorize_params(confidential.client.client_id, Pkce.make())
    page = http.get("/oauth/authorize", params=params)
    nonce = request_id(page.text)
    forged = http.post("/oauth/authorize", data={"token": read_pat, "decision": "approve"})
    assert forged.status_code == 400
    assert "location" not in forged.headers
    guessed = {"request_id": "x" * 43, "token": read_pat, "decision": "approve"}
    assert http.post("/oauth/authorize", data=guessed).status_code == 400
    form = {"request_id": nonce, "token": read_pat, "decision": "approve"}
    assert "code" in redirect_params(http.post("/oauth/authorize", data=form))
    replayed = http.post("/oauth/authorize", data=form)
    assert replayed.status_code == 400
    assert "already used" in replayed.text


def test_authorize_form_binds_the_request_parameters(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str
) -> None:
    """Parameters added to the posted form can't change what was shown to the owner."""
    pkce = Pkce.make()
    params = authorize_params(confidential.client.client_id, pkce, scope="read")
    page = http.get("/oauth/authorize", params=params)
    form = {"request_id": request_id(page.text), "token": read_pat, "decision": "approve",
            "scope": "write", "redirect_uri": "https://evil.example/"}  # fmt: skip
    back = redirect_params(http.post("/oauth/authorize?scope=write", data=form))  # to REDIRECT
    assert exchange(http, confidential, back["code"], pkce).json()["scope"] == "read"


def test_authorize_form_expires(
    http: httpx.Client, confidential: RegisteredClient, read_pat: str, clock: Clock
) -> None:
    page = http.get("/oauth/authorize", params=authorize_params(confidential.client.client_id,
                                                                 Pkce.make()))  # fmt: skip
    clock.advance(30 * 60_000)
    form = {"request_id": request_id(page.text), "token": read_pat, "decision": "approve"}
    assert http.post("/oauth/authorize", data=form).status_code == 400


# Client registration


def test_clients_registration_needs_a_write_personal_access_token(
    http: httpx.Client, read_pat: str
) -> None:
    body = {"client_name": "X", "redirect_uris": [REDIRECT]}
    anonymous = http.post("/oauth/clients", json=body)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    reader = http.post("/oauth/clients", json=body, headers=bearer(read_pat))
    assert reader.status_code == 403


def test_clients_registration_refuses_oauth_access_tokens(
    http: httpx.Client, confidential: RegisteredClient, write_pat: str
) -> None:
    pkce = Pkce.make()
    code = get_code(http, confidential.client.client_id, pkce, write_pat, scope="write")
    access = exchange(http, confidential, code, pkce).json()["access_token"]
    body = {"client_name": "X", "redirect_uris": [REDIRECT]}
    assert http.post("/oauth/clients", json=body, headers=bearer(access)).status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "path"),
    [
        (b"{not json", 400, "$"),
        ({"redirect_uris": [REDIRECT]}, 400, "$.client_name"),
        ({"client_name": "X", "redirect_uris": "https://a.example/"}, 400, "$.redirect_uris"),
        ({"client_name": "X", "redirect_uris": []}, 422, "$.redirect_uris"),
        ({"client_name": "X", "redirect_uris": ["http://a.example/cb"]}, 422, "$.redirect_uris[0]"),
        (
            {"client_name": "X", "redirect_uris": ["https://a.example/#f"]},
            422,
            "$.redirect_uris[0]",
        ),
        ({"client_name": "X", "redirect_uris": [REDIRECT], "scope": "admin"}, 422, "$.scope"),
        ({"client_name": "X", "redirect_uris": [REDIRECT], "logo": "x"}, 400, "$.logo"),
    ],
)
def test_clients_registration_names_each_problem(
    http: httpx.Client, write_pat: str, body: object, status: int, path: str
) -> None:
    headers = bearer(write_pat)
    if isinstance(body, bytes):
        response = http.post("/oauth/clients", content=body, headers=headers)
    else:
        response = http.post("/oauth/clients", json=body, headers=headers)
    assert response.status_code == status, response.text
    assert path in [d["path"] for d in response.json()["error"]["details"]]


def test_clients_deletion_revokes_tokens_and_is_limited_to_the_owner(
    catalog: Catalog, http: httpx.Client, read_pat: str, write_pat: str
) -> None:
    created = http.post("/oauth/clients", headers=bearer(write_pat),
                        json={"client_name": "Gone", "redirect_uris": [REDIRECT]})  # fmt: skip
    client_id = created.json()["client_id"]
    client = RegisteredClient(catalog_client(catalog, client_id), created.json()["client_secret"])
    pkce = Pkce.make()
    issued = exchange(http, client, get_code(http, client_id, pkce, read_pat), pkce).json()

    other_account = catalog.accounts.create("other")
    stranger = catalog.tokens.create("stranger", "write", account_id=other_account.id).secret
    assert http.delete(f"/oauth/clients/{client_id}", headers=bearer(stranger)).status_code == 404
    assert http.get("/oauth/clients", headers=bearer(stranger)).json() == []
    [listed] = http.get("/oauth/clients", headers=bearer(read_pat)).json()
    assert listed["client_id"] == client_id and listed["client_name"] == "Gone"
    assert "client_secret" not in listed
    assert http.get("/oauth/clients").status_code == 401
    assert http.get("/oauth/clients", headers=bearer(issued["access_token"])).status_code == 403
    assert http.get("/protected", headers=bearer(issued["access_token"])).status_code == 200

    assert http.delete(f"/oauth/clients/{client_id}", headers=bearer(write_pat)).status_code == 204
    assert http.get("/protected", headers=bearer(issued["access_token"])).status_code == 401
    assert http.get("/oauth/clients", headers=bearer(read_pat)).json() == []
    oauth_error(refresh(http, client, issued["refresh_token"]), 401, "invalid_client")
    page = http.get("/oauth/authorize", params=authorize_params(client_id, pkce))
    assert page.status_code == 400
    assert http.delete(f"/oauth/clients/{client_id}", headers=bearer(write_pat)).status_code == 404


def catalog_client(catalog: Catalog, client_id: str) -> OAuthClient:
    found = OAuthStore.of(catalog).client(client_id)
    assert found is not None
    return found


# Transport


def test_plain_http_is_refused_off_loopback(
    http: httpx.Client, confidential: RegisteredClient
) -> None:
    """Behind a TLS proxy the server must see https (uvicorn --proxy-headers); plain http on a
    public name is refused rather than sending tokens in clear."""
    public_host = {"Host": "liftlog.example"}
    form = {"grant_type": "refresh_token", "refresh_token": "llort_x"}
    auth = (confidential.client.client_id, confidential.secret or "")
    token = http.post("/oauth/token", data=form, auth=auth, headers=public_host)
    oauth_error(token, 400, "insecure_transport")
    params = authorize_params(confidential.client.client_id, Pkce.make())
    page = http.get("/oauth/authorize", params=params, headers=public_host)
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "insecure_transport" in page.text
