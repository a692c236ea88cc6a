"""OAuth storage on SQLite and PostgreSQL: hashing, single use, rotation, replay, expiry."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from liftlog.api.oauth import register_client
from liftlog.catalog import schema
from liftlog.catalog.oauth import (
    ACCESS_TTL_S,
    CODE_TTL_MS,
    CONSENT_TTL_MS,
    PURGE_AFTER_MS,
    AuthorizationCode,
    OAuthClient,
    OAuthStore,
    OAuthToken,
    redirect_uri_problem,
)
from liftlog.catalog.store import Catalog
from liftlog.errors import Conflict, InvalidInput, NotFound, Unauthorized, Unprocessable
from tests.catalog.conftest import Clock

from .conftest import REDIRECT

OAUTH_TABLES = [
    schema.oauth_clients,
    schema.oauth_requests,
    schema.oauth_codes,
    schema.oauth_tokens,
]


@pytest.fixture
def store(catalog: Catalog) -> OAuthStore:
    return OAuthStore.of(catalog)


@pytest.fixture
def client(catalog: Catalog) -> OAuthClient:
    return register_client(catalog, "Acme", [REDIRECT], ["read", "write"]).client


def code_for(
    store: OAuthStore, client: OAuthClient, code: str = "code-1", scope: str = "read"
) -> AuthorizationCode:
    return store.save_code(
        code,
        client,
        account_id=client.account_id,
        redirect_uri=REDIRECT,
        scope=scope,
        code_challenge="c" * 43,
        code_challenge_method="S256",
    )


def first_pair(store: OAuthStore, client: OAuthClient, n: int = 1) -> OAuthToken:
    code = code_for(store, client, f"code-{n}")
    return store.issue(
        client,
        account_id=client.account_id,
        scope="read",
        access=f"lloat_a{n}",
        refresh=f"llort_r{n}",
        expires_in=ACCESS_TTL_S,
        code=code,
    )


def test_store_keeps_only_hashes_of_secrets(catalog: Catalog, store: OAuthStore) -> None:
    registered = register_client(catalog, "Acme", [REDIRECT], ["read"])
    assert registered.secret is not None and registered.secret.startswith("llcs_")
    client = registered.client
    nonce = store.open_consent(client, {"client_id": client.client_id})
    code_for(store, client, "the-code")
    token = store.issue(
        client,
        account_id=client.account_id,
        scope="read",
        access="lloat_AAA",
        refresh="llort_BBB",
        expires_in=ACCESS_TTL_S,
        code=store.find_code("the-code", client),
    )
    assert token.grant_id > 0
    secrets = [registered.secret, nonce, "the-code", "lloat_AAA", "llort_BBB"]
    with catalog.engine.connect() as conn:
        stored = [str(v) for t in OAUTH_TABLES for row in conn.execute(select(t)) for v in row]
    for secret in secrets:
        assert not [v for v in stored if secret in v], secret
        assert hashlib.sha256(secret.encode()).hexdigest() in stored
    assert "client_secret" not in client.to_dict()
    assert "secret_sha256" not in repr(client)


def test_store_client_secret_check(catalog: Catalog, store: OAuthStore) -> None:
    registered = register_client(catalog, "Acme", [REDIRECT], ["read"])
    assert registered.secret is not None
    assert registered.client.check_secret(registered.secret)
    assert not registered.client.check_secret(registered.secret + "x")
    public = register_client(catalog, "App", [REDIRECT], public=True)
    assert public.secret is None and public.client.public
    assert not public.client.check_secret("")


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("https://acme.example/cb", True),
        ("https://acme.example:8443/cb?x=1", True),
        ("http://127.0.0.1:8765/cb", True),
        ("http://[::1]:8765/cb", True),
        ("http://localhost/cb", True),
        ("http://acme.example/cb", False),
        ("https://acme.example/cb#frag", False),
        ("https://acme.example/cb#", False),
        ("javascript:alert(1)", False),
        ("/relative/cb", False),
        ("ftp://acme.example/cb", False),
        ("https://[::1/cb", False),
    ],
)
def test_store_redirect_uri_rules(uri: str, ok: bool) -> None:
    assert (redirect_uri_problem(uri) is None) == ok


def test_store_registration_reports_every_problem(store: OAuthStore) -> None:
    with pytest.raises(Unprocessable) as caught:
        store.register_client(
            {
                "client_name": " ",
                "redirect_uris": ["http://a.example/", "https://b.example/"],
                "scope": "read admin",
            }
        )
    paths = {d.path for d in caught.value.details}
    assert paths == {"$.client_name", "$.redirect_uris[0]", "$.scope"}
    with pytest.raises(InvalidInput):
        store.register_client({"client_name": "X", "redirect_uris": [7]})


def test_store_registration_normalises_scope_and_uris(catalog: Catalog) -> None:
    client = register_client(catalog, "X", [REDIRECT, REDIRECT], ["write", "read", "write"]).client
    assert client.scope == "read write"
    assert client.redirect_uris == (REDIRECT,)


def test_store_consent_is_single_use_and_expires(
    store: OAuthStore, client: OAuthClient, clock: Clock
) -> None:
    params = {"client_id": client.client_id, "scope": "read", "state": "s"}
    nonce = store.open_consent(client, params)
    assert store.take_consent(nonce) == params
    assert store.take_consent(nonce) is None
    assert store.take_consent("not-a-nonce") is None
    late = store.open_consent(client, params)
    clock.advance(CONSENT_TTL_MS)
    assert store.take_consent(late) is None


def test_store_code_is_spent_once_and_a_replay_revokes_its_tokens(
    store: OAuthStore, client: OAuthClient
) -> None:
    first_pair(store, client)  # spends code-1
    unrelated = code_for(store, client, "code-other")
    assert store.authenticate("lloat_a1").scope == "read"
    assert store.find_code("code-1", client) is None  # the replay finds nothing ...
    with pytest.raises(Unauthorized, match="revoked"):
        store.authenticate("lloat_a1")  # ... and revokes what the code gave
    assert store.find_code("code-other", client) == unrelated


def test_store_concurrent_spend_of_one_code_gives_one_token(
    store: OAuthStore, client: OAuthClient
) -> None:
    """Two requests that both found the code unspent: the second to store its token loses."""
    code = code_for(store, client)
    found_by_first = store.find_code("code-1", client)
    found_by_second = store.find_code("code-1", client)
    assert found_by_first == found_by_second == code
    store.issue(
        client,
        account_id=client.account_id,
        scope="read",
        access="lloat_x",
        refresh=None,
        expires_in=ACCESS_TTL_S,
        code=found_by_first,
    )
    with pytest.raises(Conflict):
        store.issue(
            client,
            account_id=client.account_id,
            scope="read",
            access="lloat_y",
            refresh=None,
            expires_in=ACCESS_TTL_S,
            code=found_by_second,
        )
    with pytest.raises(Unauthorized):
        store.authenticate("lloat_x")  # the race revoked the winner's grant too
    with pytest.raises(Unauthorized, match="unknown"):
        store.authenticate("lloat_y")


def test_store_code_expires_and_belongs_to_its_client(
    catalog: Catalog, store: OAuthStore, client: OAuthClient, clock: Clock
) -> None:
    code_for(store, client)
    other = register_client(catalog, "Other", [REDIRECT], ["read"]).client
    assert store.find_code("code-1", other) is None
    assert store.find_code("code-1", client) is not None
    clock.advance(CODE_TTL_MS)
    assert store.find_code("code-1", client) is None


def test_store_refresh_rotates_and_a_replay_revokes_the_grant(
    store: OAuthStore, client: OAuthClient
) -> None:
    first = first_pair(store, client)
    previous = store.find_refresh("llort_r1")
    assert previous is not None and previous.id == first.id
    second = store.issue(
        client,
        account_id=client.account_id,
        scope="read",
        access="lloat_a2",
        refresh="llort_r2",
        expires_in=ACCESS_TTL_S,
        previous=previous,
    )
    assert second.grant_id == first.grant_id
    with pytest.raises(Unauthorized):
        store.authenticate("lloat_a1")  # rotated out with its refresh token
    assert store.authenticate("lloat_a2").id == second.id
    with pytest.raises(Conflict):  # a concurrent second rotation of the same pair
        store.issue(
            client,
            account_id=client.account_id,
            scope="read",
            access="lloat_a3",
            refresh="llort_r3",
            expires_in=ACCESS_TTL_S,
            previous=previous,
        )
    with pytest.raises(Unauthorized):
        store.authenticate("lloat_a2")
    assert store.find_refresh("llort_r2") is None


def test_store_replayed_refresh_token_is_detected_on_lookup(
    store: OAuthStore, client: OAuthClient
) -> None:
    first_pair(store, client)
    previous = store.find_refresh("llort_r1")
    store.issue(
        client,
        account_id=client.account_id,
        scope="read",
        access="lloat_a2",
        refresh="llort_r2",
        expires_in=ACCESS_TTL_S,
        previous=previous,
    )
    assert store.find_refresh("llort_r1") is None
    assert store.find_refresh("llort_r2") is None  # the replay ended the grant


def test_store_grants_are_independent(store: OAuthStore, client: OAuthClient) -> None:
    first_pair(store, client, 1)
    second = first_pair(store, client, 2)
    token = store.find("lloat_a1")
    assert token is not None
    store.revoke_grant(token.grant_id)
    with pytest.raises(Unauthorized):
        store.authenticate("lloat_a1")
    assert store.authenticate("lloat_a2").id == second.id


def test_store_access_token_expiry(store: OAuthStore, client: OAuthClient, clock: Clock) -> None:
    first_pair(store, client)
    clock.advance(ACCESS_TTL_S * 1000 - 1)
    assert store.authenticate("lloat_a1").scope == "read"
    clock.advance(1)
    with pytest.raises(Unauthorized, match="expired"):
        store.authenticate("lloat_a1")
    assert store.find_refresh("llort_r1") is not None  # the refresh token outlives it


def test_store_refresh_token_expiry(store: OAuthStore, client: OAuthClient, clock: Clock) -> None:
    token = first_pair(store, client)
    assert token.refresh_expires is not None
    clock.now = token.refresh_expires
    assert store.find_refresh("llort_r1") is None


def test_store_find_by_either_token(store: OAuthStore, client: OAuthClient) -> None:
    token = first_pair(store, client)
    for secret in ("lloat_a1", "llort_r1"):
        for hint in (None, "access_token", "refresh_token"):
            found = store.find(secret, hint)
            assert found is not None and found.id == token.id
    assert store.find("lloat_other") is None


def test_store_delete_client_revokes_its_tokens(
    catalog: Catalog, store: OAuthStore, client: OAuthClient
) -> None:
    first_pair(store, client)
    other_account = catalog.accounts.create("other")
    with pytest.raises(NotFound):
        store.delete_client(client.client_id, account_id=other_account.id)
    assert [c.id for c in store.clients(client.account_id)] == [client.id]
    deleted = store.delete_client(client.client_id, account_id=client.account_id)
    assert deleted.revoked is not None
    assert store.client(client.client_id) is None
    assert store.clients(client.account_id) == []
    with pytest.raises(Unauthorized, match="revoked"):
        store.authenticate("lloat_a1")
    assert store.find_refresh("llort_r1") is None
    with pytest.raises(NotFound):
        store.delete_client(client.client_id, account_id=client.account_id)


def test_store_purges_expired_forms_and_codes_a_day_after_expiry(
    catalog: Catalog, store: OAuthStore, client: OAuthClient, clock: Clock
) -> None:
    store.open_consent(client, {})
    code_for(store, client)

    def counts() -> tuple[int, int]:
        with catalog.engine.connect() as conn:
            requests = conn.execute(select(func.count()).select_from(schema.oauth_requests))
            codes = conn.execute(select(func.count()).select_from(schema.oauth_codes))
            return requests.scalar_one(), codes.scalar_one()

    start = clock.now
    clock.now = start + CODE_TTL_MS + PURGE_AFTER_MS - 1
    store.open_consent(client, {})  # purges on the way: nothing yet
    assert counts() == (2, 1)
    clock.advance(1)
    store.open_consent(client, {})
    assert counts() == (3, 0)  # the code went a day after it expired
    clock.now = start + CONSENT_TTL_MS + PURGE_AFTER_MS
    store.open_consent(client, {})
    assert counts() == (3, 0)  # so did the first form; the later ones stay


def test_store_issue_needs_exactly_one_source(store: OAuthStore, client: OAuthClient) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        store.issue(
            client,
            account_id=client.account_id,
            scope="read",
            access="lloat_z",
            refresh=None,
            expires_in=ACCESS_TTL_S,
        )
