"""Signing in to the web pages: passwords, the session cookie and CSRF, against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from liftlog.web.throttle import PER_EMAIL
from tests.api.conftest import Api, start_api
from tests.server import mapped, wait_analysis_imported
from tests.web.conftest import EMAIL, PASSWORD, create_user, csrf_of, sign_in


def test_signin_pages_need_a_session(web: Api) -> None:
    with httpx.Client(base_url=web.url) as anonymous:
        page = anonymous.get("/ui/projects")
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/signin?next=%2Fui%2Fprojects"


def test_signin_refuses_a_wrong_password(web: Api) -> None:
    with httpx.Client(base_url=web.url) as client:
        refused = sign_in(client, "not the password")
        assert refused.status_code == 401
        assert "Wrong email or password." in refused.text
        assert client.get("/ui/projects").status_code == 303


def test_signin_refuses_an_unknown_email(web: Api) -> None:
    with httpx.Client(base_url=web.url) as client:
        csrf = csrf_of(client.get("/ui/signin").text)
        refused = client.post(
            "/ui/signin", data={"csrf": csrf, "email": "eve@example.com", "password": PASSWORD}
        )
        assert refused.status_code == 401


def test_signin_requires_the_csrf_token(web: Api) -> None:
    with httpx.Client(base_url=web.url) as client:
        client.get("/ui/signin")  # has a session cookie, but does not send its token back
        for token in (None, "forged"):
            data = {"email": EMAIL, "password": PASSWORD}
            if token is not None:
                data["csrf"] = token
            refused = client.post("/ui/signin", data=data)
            assert refused.status_code == 403
            assert "not sent from this site" in refused.text
        assert client.get("/ui/projects").status_code == 303


def test_signin_sets_an_httponly_samesite_cookie_and_signs_out(web: Api) -> None:
    with httpx.Client(base_url=web.url) as client:
        signed_in = sign_in(client)
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/ui/projects"
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/;" in cookie
        projects = client.get("/ui/projects")
        assert projects.status_code == 200
        assert EMAIL in projects.text
        # sign-out is a form too: without its token it is refused and the session stays
        assert client.post("/ui/signout", data={}).status_code == 403
        assert client.get("/ui/projects").status_code == 200
        out = client.post("/ui/signout", data={"csrf": csrf_of(projects.text)})
        assert out.status_code == 303
        assert client.get("/ui/projects").status_code == 303


def test_signin_refuses_a_tampered_cookie(web: Api) -> None:
    with httpx.Client(base_url=web.url) as client:
        sign_in(client)
        value = client.cookies["liftlog_session"]
        body, _, signature = value.partition(".")
        forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
        client.cookies.clear()
        client.cookies.set("liftlog_session", forged, domain="127.0.0.1", path="/")
        assert client.get("/ui/projects").status_code == 303


def test_signin_next_never_leaves_the_site(web: Api) -> None:
    with httpx.Client(base_url=web.url) as client:
        csrf = csrf_of(client.get("/ui/signin").text)
        response = client.post(
            "/ui/signin",
            data={"csrf": csrf, "email": EMAIL, "password": PASSWORD,
                  "next": "//evil.example/ui/"},
        )  # fmt: skip
        assert response.headers["location"] == "/ui/projects"


def test_signin_is_refused_for_a_while_after_repeated_failures(web: Api) -> None:
    email, password = "lock@example.com", "the right passphrase"
    create_user(web.server.data_dir, email, password)
    with httpx.Client(base_url=web.url) as client:
        csrf = csrf_of(client.get("/ui/signin").text)

        def attempt(secret: str) -> httpx.Response:
            return client.post("/ui/signin", data={"csrf": csrf, "email": email,
                                                   "password": secret})  # fmt: skip

        for _ in range(PER_EMAIL):
            assert attempt("a wrong guess!").status_code == 401
        locked = attempt(password)  # even the right password, until the window has passed
        assert locked.status_code == 429
        assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
        assert "Too many failed sign-ins" in locked.text
        assert client.get("/ui/projects").status_code == 303
    with httpx.Client(base_url=web.url) as other:  # another email from the same address is fine
        assert sign_in(other).status_code == 303


def _cli(web: Api, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "liftlog.cli", "user", *args, "--data", str(web.server.data_dir)],
        input=stdin, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_new_password_ends_the_sessions_signed_in_with_the_old_one(web: Api) -> None:
    email, old, new = "ben@example.com", "the old passphrase", "the new passphrase"
    create_user(web.server.data_dir, email, old)
    emails = [u["email"] for u in json.loads(_cli(web, "list", "--json"))]
    assert emails.index(EMAIL) < emails.index(email)  # oldest first
    listed = {u["email"]: u for u in json.loads(_cli(web, "list", "--json"))}
    assert listed[email]["last_sign_in"] is None
    with httpx.Client(base_url=web.url) as before, httpx.Client(base_url=web.url) as after:
        assert sign_in(before, old, email).status_code == 303
        assert before.get("/ui/projects").status_code == 200
        changed = _cli(web, "password", "--email", email.upper(), "--password-stdin", stdin=new)
        assert "new password set" in changed
        assert before.get("/ui/projects").status_code == 303  # back to the sign-in page
        assert sign_in(after, old, email).status_code == 401
        assert sign_in(after, new, email).status_code == 303
        assert after.get("/ui/projects").status_code == 200
    listed = {u["email"]: u for u in json.loads(_cli(web, "list", "--json"))}
    assert listed[email]["last_sign_in"] is not None
    assert f"{email}  account" in _cli(web, "list")


def test_a_new_password_must_be_usable_and_the_user_must_exist(web: Api) -> None:
    for args, stdin, problem in (
        (("--email", EMAIL), "short", "$.password"),
        (("--email", "nobody@example.com"), "long enough passphrase", "no user"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "liftlog.cli", "user", "password", *args, "--password-stdin",
             "--data", str(web.server.data_dir)],
            input=stdin, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode != 0 and problem in done.stderr, done.stderr
    with httpx.Client(base_url=web.url) as client:
        assert sign_in(client).status_code == 303  # the password stayed as it was


def test_signing_in_imports_the_results_computations_in_the_background(tmp_path: Path) -> None:
    """A server that only collected events has not loaded DuckDB or SciPy; once someone signs
    in to the pages, or opens one with a session from before a restart, they are loaded before
    the first results page asks for them."""
    served = start_api(tmp_path / "data")
    try:
        create_user(served.server.data_dir, EMAIL, PASSWORD)
        assert served.server.proc is not None
        pid = served.server.proc.pid
        assert not mapped(pid, "duckdb") and not mapped(pid, "scipy/optimize")
        with httpx.Client(base_url=served.url) as client:
            assert sign_in(client).status_code == 303
            cookies = client.cookies
        wait_analysis_imported(pid, "a sign-in")
    finally:
        served.server.stop()
    served = start_api(tmp_path / "data")  # a restart: the session is still good
    try:
        assert served.server.proc is not None
        pid = served.server.proc.pid
        with httpx.Client(base_url=served.url) as client:
            assert client.get("/ui/signin").status_code == 200  # a page, signed out
            time.sleep(1)
            assert not mapped(pid, "duckdb") and not mapped(pid, "scipy/optimize")
            client.cookies = cookies
            page = client.get("/ui/", follow_redirects=True)
            assert page.status_code == 200 and "Sign out" in page.text
        wait_analysis_imported(pid, "a page opened with a session from before the restart")
    finally:
        served.server.stop()
