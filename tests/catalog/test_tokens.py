from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from liftlog.catalog import schema
from liftlog.catalog.store import Catalog
from liftlog.errors import Forbidden, InvalidInput, NotFound, Unauthorized, Unprocessable

from .conftest import Clock


def test_tokens_secret_is_shown_once_and_stored_hashed(catalog: Catalog) -> None:
    issued = catalog.tokens.create("ci", "write")
    assert issued.secret.startswith("llpat_")
    assert len(issued.secret) >= 6 + 43  # 32 random bytes
    assert issued.secret.startswith(issued.token.prefix)
    with catalog.engine.connect() as conn:
        stored = conn.execute(select(schema.tokens)).mappings().one()
    assert issued.secret not in [str(v) for v in stored.values()]
    assert stored["secret_sha256"] == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert "secret" not in issued.token.to_dict()


def test_tokens_are_all_different(catalog: Catalog) -> None:
    secrets = {catalog.tokens.create(f"t{i}", "read").secret for i in range(20)}
    assert len(secrets) == 20


def test_tokens_authenticate_and_record_last_use(catalog: Catalog, clock: Clock) -> None:
    issued = catalog.tokens.create("ci", "read")
    assert issued.token.last_used is None
    t1 = clock.advance(1_000)
    assert catalog.tokens.authenticate(issued.secret).last_used == t1
    clock.advance(1_000)  # within a minute: not rewritten
    assert catalog.tokens.authenticate(issued.secret).last_used == t1
    t3 = clock.advance(60_000)
    assert catalog.tokens.authenticate(issued.secret, "read").last_used == t3
    assert catalog.tokens.get(issued.token.id).last_used == t3


def test_tokens_scopes(catalog: Catalog) -> None:
    reader = catalog.tokens.create("r", "read")
    writer = catalog.tokens.create("w", "write")
    with pytest.raises(Forbidden):
        catalog.tokens.authenticate(reader.secret, "write")
    assert catalog.tokens.authenticate(writer.secret, "write").scope == "write"
    assert catalog.tokens.authenticate(writer.secret, "read").scope == "write"
    with pytest.raises(Unprocessable):
        catalog.tokens.create("x", "admin")
    with pytest.raises(InvalidInput):
        catalog.tokens.create(3, "read")  # type: ignore[arg-type]


def test_tokens_unknown_and_revoked_are_unauthorized(catalog: Catalog, clock: Clock) -> None:
    issued = catalog.tokens.create("ci", "write")
    with pytest.raises(Unauthorized):
        catalog.tokens.authenticate(issued.secret + "x")
    t = clock.advance(10)
    revoked = catalog.tokens.revoke(issued.token.id)
    assert revoked.revoked == t and not revoked.active
    clock.advance(10)
    assert catalog.tokens.revoke(issued.token.id).revoked == t
    with pytest.raises(Unauthorized):
        catalog.tokens.authenticate(issued.secret)
    with pytest.raises(NotFound):
        catalog.tokens.revoke(10**9)


def test_tokens_list_pages(catalog: Catalog) -> None:
    ids = [catalog.tokens.create(f"t{i}", "read").token.id for i in range(3)]
    assert [t.id for t in catalog.tokens.list(page=2, per_page=2).items] == ids[2:]
    assert catalog.tokens.list().total == 3
