"""Datafile endpoints: open and authenticated, ETag/Last-Modified and 304."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import httpx
import pytest

from liftlog.api.datafiles import not_modified, stable_seconds
from liftlog.wire.datafile import decode_datafile
from tests.api.conftest import Api, created, error_of, new_project


def test_datafile_is_open_and_revalidates_by_etag(api: Api, writer: httpx.Client) -> None:
    project = new_project(writer)
    url = f"/datafiles/{project['sdk_key']}.json"
    with api.client() as anonymous:
        first = anonymous.get(url)
        assert first.status_code == 200
        datafile = decode_datafile(first.content)
        assert datafile.project_id == str(project["id"])
        assert datafile.revision == str(project["revision"])
        tag = first.headers["etag"]
        assert anonymous.get(url, headers={"if-none-match": tag}).status_code == 304
        assert anonymous.get(url, headers={"if-none-match": '"0-0", ' + tag}).status_code == 304

        created(
            writer.post(f"/v2/projects/{project['id']}/custom_events", json={"key": "purchase"})
        )
        changed = anonymous.get(url, headers={"if-none-match": tag})
        assert changed.status_code == 200
        assert int(decode_datafile(changed.content).revision) > int(datafile.revision)
        assert [e.key for e in decode_datafile(changed.content).events] == ["purchase"]
        assert changed.headers["etag"] != tag
        error_of(anonymous.get("/datafiles/no-such-key.json"), 404)


def test_datafile_last_modified_once_stable(api: Api, writer: httpx.Client) -> None:
    project = new_project(writer)
    url = f"/datafiles/{project['sdk_key']}.json"
    with api.client() as anonymous:
        # Just changed: a date of whole seconds could not tell this version from the next one.
        assert "last-modified" not in anonymous.get(url).headers
        time.sleep(2.1)
        response = anonymous.get(url)
        date = response.headers["last-modified"]
        assert parsedate_to_datetime(date).timestamp() <= time.time()
        assert anonymous.get(url, headers={"if-modified-since": date}).status_code == 304
        created(writer.post(f"/v2/projects/{project['id']}/custom_events", json={"key": "signup"}))
        after = anonymous.get(url, headers={"if-modified-since": date})
        assert after.status_code == 200
        assert [e.key for e in decode_datafile(after.content).events] == ["signup"]


@pytest.mark.parametrize(
    ("last_modified_ms", "now_ms", "expected"),
    [
        (10_500, 10_900, None),  # same second
        (10_500, 11_900, None),  # the next second has not fully passed
        (10_500, 12_000, 10),
        (10_999, 13_000, 10),
    ],
)
def test_datafile_date_is_sent_only_when_stable(
    last_modified_ms: int, now_ms: int, expected: int | None
) -> None:
    assert stable_seconds(last_modified_ms, now_ms) == expected


def test_datafile_if_none_match_wins_over_if_modified_since() -> None:
    date = "Wed, 01 Jan 2025 00:00:00 GMT"
    assert not_modified({"if-none-match": '"1-2"', "if-modified-since": date}, '"1-2"', None)
    assert not not_modified({"if-none-match": '"1-1"', "if-modified-since": date}, '"1-2"', 0)
    assert not_modified({"if-modified-since": date}, '"1-2"', 1_735_689_600)
    assert not not_modified({"if-modified-since": date}, '"1-2"', 1_735_689_601)
    assert not not_modified({"if-modified-since": "garbage"}, '"1-2"', 0)


def test_authenticated_datafile_needs_a_datafile_token(api: Api, writer: httpx.Client) -> None:
    project = new_project(writer)
    url = f"/datafiles/auth/{project['sdk_key']}.json"
    with api.client() as anonymous:
        error_of(anonymous.get(url), 401)
    with api.client(api.write) as management:
        error_of(management.get(url), 403)  # a management token is not a datafile token
    with api.client(api.other_account_datafile) as stranger:
        error_of(stranger.get(url), 403)  # another account's project
    with api.client(api.datafile) as sdk:
        response = sdk.get(url)
        assert response.status_code == 200
        assert decode_datafile(response.content).sdk_key == project["sdk_key"]
        assert "private" in response.headers["cache-control"]
        again = sdk.get(url, headers={"if-none-match": response.headers["etag"]})
        assert again.status_code == 304
        error_of(sdk.get("/datafiles/auth/no-such-key.json"), 404)
    with api.catalog() as catalog:
        issued = catalog.tokens.create("revoked sdk", "datafile")
        catalog.tokens.revoke(issued.token.id)
    with api.client(issued.secret) as revoked:
        error_of(revoked.get(url), 401)
