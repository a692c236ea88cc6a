"""The OAuth 2.0 flow against `liftlog serve`, as an integration runs it, calling the real API."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.oauth.conftest import (
    REDIRECT,
    Pkce,
    authorize_params,
    bearer,
    redirect_params,
    request_id,
)


def test_oauth_flow_on_the_served_management_api(api: Api) -> None:
    with api.client() as http:
        registration = http.post(
            "/oauth/clients",
            json={"client_name": "Acme Lists", "redirect_uris": [REDIRECT], "scope": "read write"},
            headers=bearer(api.write),
        )
        assert registration.status_code == 201, registration.text
        client_id = registration.json()["client_id"]
        secret = registration.json()["client_secret"]

        pkce = Pkce.make("served")
        params = authorize_params(client_id, pkce, scope="read")
        page = http.get("/oauth/authorize", params=params)
        assert page.status_code == 200
        form = {"request_id": request_id(page.text), "token": api.read, "decision": "approve"}
        code = redirect_params(http.post("/oauth/authorize", data=form))["code"]

        tokens = http.post(
            "/oauth/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                  "code_verifier": pkce.verifier},
            auth=(client_id, secret),
        ).json()  # fmt: skip
        access = tokens["access_token"]
        assert http.get("/v2/projects", headers=bearer(access)).status_code == 200
        denied = http.post("/v2/projects", json={"name": "x"}, headers=bearer(access))
        assert denied.status_code == 403

        renewed = http.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=(client_id, secret),
        )
        assert renewed.status_code == 200, renewed.text
        fresh = renewed.json()["access_token"]
        assert http.get("/v2/projects", headers=bearer(fresh)).status_code == 200

        revoked = http.post("/oauth/revoke", data={"token": fresh}, auth=(client_id, secret))
        assert revoked.status_code == 200
        assert http.get("/v2/projects", headers=bearer(fresh)).status_code == 401
