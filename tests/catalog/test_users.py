"""Users on SQLite and PostgreSQL: passwords, the stamp that ends sessions, the list."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import VerifyMismatchError
from sqlalchemy import select, update

from liftlog.catalog import schema, users
from liftlog.catalog.store import Catalog
from liftlog.catalog.users import Users
from liftlog.errors import InvalidInput, NotFound, Unauthorized


def test_a_new_password_replaces_the_old_and_changes_the_stamp(catalog: Catalog) -> None:
    users = Users.of(catalog)
    ana = users.create("ana@example.com", "the first passphrase")
    ben = users.create("ben@example.com", "another passphrase")
    changed = users.set_password("ANA@example.com ", "the second passphrase")
    assert changed.id == ana.id and changed.stamp != ana.stamp
    with pytest.raises(Unauthorized):
        users.authenticate("ana@example.com", "the first passphrase")
    assert users.authenticate("ana@example.com", "the second passphrase").id == ana.id
    assert users.get(ben.id).stamp == ben.stamp  # nobody else's sessions end
    assert [u.email for u in users.list()] == ["ana@example.com", "ben@example.com"]


def test_a_new_password_needs_a_user_and_a_usable_password(catalog: Catalog) -> None:
    users = Users.of(catalog)
    ana = users.create("ana@example.com", "the first passphrase")
    with pytest.raises(NotFound):
        users.set_password("nobody@example.com", "a usable passphrase")
    with pytest.raises(InvalidInput):
        users.set_password("ana@example.com", "short")
    assert users.get(ana.id).stamp == ana.stamp


def test_rehashing_a_password_at_sign_in_keeps_the_stamp(catalog: Catalog) -> None:
    """A hash made with older argon2 parameters is made anew at the next sign-in: the same
    password, so the sessions signed in with it go on."""
    users = Users.of(catalog)
    ana = users.create("ana@example.com", "the first passphrase")
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("the first passphrase")
    with catalog.engine.begin() as conn:
        conn.execute(update(schema.users).values(password_hash=weak))
    signed_in = users.authenticate("ana@example.com", "the first passphrase")
    with catalog.engine.connect() as conn:
        rehashed = conn.execute(select(schema.users.c.password_hash)).scalar_one()
    assert rehashed != weak and PasswordHasher().verify(rehashed, "the first passphrase")
    assert signed_in.stamp == ana.stamp


def test_an_unknown_email_is_verified_against_a_hash_that_costs_as_much() -> None:
    """The hash an unknown email is checked against has the hasher's own parameters and is well
    formed (a malformed one would be refused at once, and the quick refusal would tell that the
    email is unknown); no password matches it."""
    hasher = PasswordHasher()
    assert extract_parameters(users._DUMMY_HASH) == extract_parameters(hasher.hash("x"))
    assert not hasher.check_needs_rehash(users._DUMMY_HASH)
    for password in ("", "no user has this password", "a long passphrase"):
        with pytest.raises(VerifyMismatchError):
            hasher.verify(users._DUMMY_HASH, password)
    assert users._unmatched_hash(hasher) != users._DUMMY_HASH  # drawn at random
