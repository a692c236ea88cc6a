"""OAuth consent by the person signed in to the pages, against a real server.

An integration sends the browser to ``/oauth/authorize``; someone not signed in is offered the
sign-in page, which brings them back; signed in, they allow access for their own account with
one click. The decision form repeats the session's CSRF token, so a form posted without the
session (from another site, say) grants nothing.
"""

from __future__ import annotations

import re
from html import unescape

import httpx

from tests.api.conftest import Api
from tests.oauth.conftest import REDIRECT, Pkce, authorize_params, bearer, redirect_params
from tests.oauth.conftest import request_id as request_id_of
from tests.web.conftest import EMAIL, PASSWORD, csrf_of


def test_a_signed_in_user_allows_an_integration_for_their_account(web: Api) -> None:
    with httpx.Client(base_url=web.url, timeout=30) as browser:
        registration = browser.post(
            "/oauth/clients",
            json={"client_name": "Acme Lists", "redirect_uris": [REDIRECT], "scope": "read"},
            headers=bearer(web.write),
        )
        assert registration.status_code == 201, registration.text
        client_id, secret = registration.json()["client_id"], registration.json()["client_secret"]
        pkce = Pkce.make("consent by session")

        first = browser.get("/oauth/authorize", params=authorize_params(client_id, pkce))
        assert first.status_code == 200
        link = re.search(r'<a href="([^"]+)">Sign in to liftlog</a>', first.text)
        assert link, first.text
        form = browser.get(unescape(link.group(1)))
        next_field = re.search(r'name="next" value="([^"]+)"', form.text)
        assert next_field, form.text
        signed = browser.post("/ui/signin", data={
            "csrf": csrf_of(form.text), "email": EMAIL, "password": PASSWORD,
            "next": unescape(next_field.group(1))})  # fmt: skip
        assert signed.status_code == 303
        back = unescape(signed.headers["location"])
        assert back.startswith("/oauth/authorize?") and client_id in back

        consent = browser.get(back)
        assert f"You are signed in as <strong>{EMAIL}</strong>" in consent.text
        assert 'name="token"' not in consent.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', consent.text)
        assert csrf
        decision = {"request_id": request_id_of(consent.text), "csrf": csrf.group(1)}

        # The same form posted without the session's cookie (as another site's page would) or
        # with another token grants nothing, and uses the form up.
        with httpx.Client(base_url=web.url) as elsewhere:
            forged = elsewhere.post("/oauth/authorize", data={**decision, "decision": "approve"})
        assert forged.status_code == 401 and "location" not in forged.headers
        again = browser.get(back)
        decision = {"request_id": request_id_of(again.text), "decision": "approve"}
        wrong = browser.post("/oauth/authorize", data={**decision, "csrf": "not the token"})
        assert wrong.status_code == 401 and "location" not in wrong.headers

        third = browser.get(back)
        allowed = browser.post("/oauth/authorize", data={
            "request_id": request_id_of(third.text), "csrf": csrf.group(1),
            "decision": "approve"})  # fmt: skip
        code = redirect_params(allowed)["code"]
        tokens = browser.post(
            "/oauth/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                  "code_verifier": pkce.verifier},
            auth=(client_id, secret),
        )  # fmt: skip
        assert tokens.status_code == 200, tokens.text
        access = tokens.json()["access_token"]
        assert browser.get("/v2/projects", headers=bearer(access)).status_code == 200
