"""A real ``liftlog serve``, a user from ``liftlog user create``, an experiment with traffic.

The experiment is `tests.api.worlds.build_world`'s: made through the management API, fed through
the Event API, loaded by the server's own loader.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, start_api
from tests.api.worlds import build_world

EMAIL = "ana@example.com"
PASSWORD = "correct horse battery"


def create_user(data_dir: Path, email: str, password: str) -> None:
    """``liftlog user create``, the password on stdin, as an administrator runs it."""
    made = subprocess.run(
        [sys.executable, "-m", "liftlog.cli", "user", "create", "--email", email,
         "--password-stdin", "--data", str(data_dir)],
        input=password + "\n", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert email in made.stdout


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    served = start_api(tmp_path_factory.mktemp("web") / "data")
    try:
        create_user(served.server.data_dir, EMAIL, PASSWORD)
        yield served
    finally:
        served.server.stop()


@pytest.fixture(scope="module")
def world(web: Api) -> dict[str, Any]:
    """40 visitors split over a and b, 20-odd conversions, one too early, one never decided."""
    return build_world(web, "Web shop", lambda i: i % 4 < 2 or i % 7 == 0)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client: httpx.Client, password: str = PASSWORD, email: str = EMAIL) -> httpx.Response:
    form = client.get("/ui/signin")
    assert form.status_code == 200
    return client.post(
        "/ui/signin",
        data={"csrf": csrf_of(form.text), "email": email, "password": password,
              "next": "/ui/projects"},
    )  # fmt: skip


@pytest.fixture
def browser_client(web: Api) -> Iterator[httpx.Client]:
    """An httpx client that has signed in, as a browser would (cookie jar, forms)."""
    with httpx.Client(base_url=web.url, timeout=30) as client:
        assert sign_in(client).status_code == 303
        yield client
