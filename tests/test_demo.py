"""First start with ``--demo`` (what ``make run`` does): a demo project a newcomer can sign in to.

One real server on an empty data directory: the printed password signs in, the demo experiment's
results equal the simulation's ground truth (the same arguments, read back from ``demo.json``,
give the same traffic), the printed debugger link explains a conversion that did not count,
``liftlog demo remove`` deletes the project and its rows, and a restart makes no second demo.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx

from liftlog import demo
from liftlog.catalog.store import Catalog, default_url
from liftlog.lake.status import lake_status
from tests.server import Server, free_port
from tests.web.conftest import csrf_of


def _liftlog(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "liftlog.cli", *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_first_start_demo_signs_in_counts_right_explains_and_goes_away(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data, free_port()).start("--demo")
    try:
        banner = server.log()
        signin = re.search(r"Sign in: +(\S+) +as (\S+) +password (\S+)", banner)
        assert signin, banner
        url, email, password = signin.groups()
        assert url == f"{server.url}/ui/"
        marker = json.loads((data / demo.DEMO_FILE).read_text())
        experiment_id = marker["experiment_id"]
        assert f"{server.url}/ui/experiments/{experiment_id}" in banner

        catalog_url = default_url(data)
        with Catalog.open(catalog_url) as catalog:
            project = catalog.projects.get(marker["project_id"])
        assert project.name == demo.PROJECT_NAME
        made = demo.Demo(project.id, experiment_id, project.sdk_key, None, None,
                         marker["started_ms"])  # fmt: skip
        truth = demo.simulate(catalog_url, made, marker["simulated_until_ms"]).expected
        server.wait_rows("decisions", sum(arm["visitors"] for arm in truth.values()))

        with httpx.Client(base_url=server.url, timeout=30) as browser:
            form = browser.get("/ui/signin")
            signed = browser.post("/ui/signin", data={
                "csrf": csrf_of(form.text), "email": email, "password": password,
                "next": "/ui/projects"})  # fmt: skip
            assert signed.status_code == 303, signed.text
            projects = browser.get("/ui/projects")
            assert demo.PROJECT_NAME in projects.text
            assert "Remove it with: liftlog demo remove" in projects.text  # marked as a demo

            token = _liftlog("token", "create", "--name", "t", "--scope", "read", "--json",
                             "--data", str(data))  # fmt: skip
            secret = json.loads(token)["secret"]
            results = httpx.get(f"{server.url}/v2/experiments/{experiment_id}/results",
                                headers={"Authorization": f"Bearer {secret}"}).json()  # fmt: skip
            purchases, revenue, carts = results["metrics"]
            for metric, field, key in (
                (purchases, "unique_conversions", "purchase"),
                (revenue, "revenue", "revenue"),
                (carts, "unique_conversions", "add_to_cart"),
            ):
                shown = {arm["name"]: (arm["samples"], arm[field]) for arm in
                         metric["results"].values()}  # fmt: skip
                assert shown == {name: (t["visitors"], t[key]) for name, t in truth.items()}

            explain = re.search(r"Why not counted\? +(\S+)", banner)
            assert explain, banner
            assert marker["explain_visitor"] in explain.group(1)
            page = browser.get(explain.group(1).removeprefix(server.url))
            assert page.status_code == 200
            assert "before the visitor&#39;s first decision" in page.text

        removed = _liftlog("demo", "remove", "--data", str(data))
        assert f"removed demo project {project.id}" in removed
        assert not (data / demo.DEMO_FILE).exists()
        info = lake_status(server.settings)
        assert info["tables"]["decisions"]["rows"] == 0  # every row was the demo's
        with Catalog.open(catalog_url) as catalog:
            assert catalog.projects.list(1, 10).total == 0
    finally:
        server.stop()

    again = server.start("--demo")
    try:
        assert again.log().count("First start") == 1  # the first run's banner, not a second one
        assert not (data / demo.DEMO_FILE).exists()
    finally:
        again.stop()
