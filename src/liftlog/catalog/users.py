"""People who sign in to the web pages, with argon2id password hashes.

    users = Users.of(catalog)
    user = users.create("ana@example.com", "a long passphrase")
    users.authenticate("ANA@example.com", "a long passphrase")   # -> User, or Unauthorized

Passwords are hashed with argon2id at argon2-cffi's defaults (RFC 9106's second recommended
profile: 64 MiB, 3 passes), about a quarter of a second per hash on two cores: slow enough to
make guessing a stolen hash expensive, fast enough for a sign-in form. A wrong email costs the
same hash as a wrong password, so the time a refusal takes does not tell which of the two was
wrong. Hashes made with older parameters are rehashed at the next successful sign-in.

A user's ``stamp`` is drawn anew with each new password: a session remembers the stamp it was
signed in with, so a new password (`Users.set_password`, ``liftlog user password``) ends the
sessions signed in with the old one. Rehashing the same password keeps it.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import ARGON2_VERSION
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping

from liftlog.catalog import schema
from liftlog.catalog.projects import Accounts
from liftlog.catalog.repo import Repository, fetch, new_id
from liftlog.errors import Conflict, InvalidInput, NotFound, Problem, Unauthorized

if TYPE_CHECKING:
    from liftlog.catalog.store import Catalog

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024  # hashing a megabyte-long "password" is a cheap denial of service
U = schema.users
_hasher = PasswordHasher()


def _unmatched_hash(hasher: PasswordHasher) -> str:
    """A hash with ``hasher``'s parameters and a random salt and digest, which no password
    matches: verifying against it costs what verifying against a user's hash costs, and making it
    costs nothing (hashing a password at import took a quarter of a second of every start)."""

    def b64(size: int) -> str:
        return base64.b64encode(secrets.token_bytes(size)).decode().rstrip("=")

    return (
        f"$argon2{hasher.type.name.lower()}$v={ARGON2_VERSION}$m={hasher.memory_cost},"
        f"t={hasher.time_cost},p={hasher.parallelism}${b64(hasher.salt_len)}${b64(hasher.hash_len)}"
    )


# Verified against when the email is unknown, so that refusal takes as long either way.
_DUMMY_HASH = _unmatched_hash(_hasher)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    account_id: int
    email: str
    created: int
    last_sign_in: int | None
    #: Drawn anew with each new password (see the module's docstring).
    stamp: str


def _user(row: RowMapping) -> User:
    return User(
        id=row["id"],
        account_id=row["account_id"],
        email=row["email"],
        created=row["created"],
        last_sign_in=row["last_sign_in"],
        stamp=row["session_stamp"],
    )


def _new_stamp() -> str:
    return secrets.token_hex(8)


def _email(raw: str) -> str:
    email = raw.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 320 or " " in email:
        raise InvalidInput("not an email address", [Problem("$.email", "must be name@domain")])
    return email


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInput(
            "unusable password",
            [Problem("$.password", f"must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} long")],
        )


class Users(Repository):
    @classmethod
    def of(cls, catalog: Catalog) -> Users:
        """The users of `catalog`, sharing its engine, clock and randomness."""
        return cls(catalog.accounts.ctx)

    def create(self, email: str, password: str, *, account_id: int | None = None) -> User:
        """A user of `account_id` (the default account if None); emails are unique."""
        address = _email(email)
        _check_password(password)
        hashed = _hasher.hash(password)
        owner = account_id if account_id is not None else Accounts(self.ctx).default().id
        now = self.ctx.clock()
        with self.transaction() as conn:
            fetch(conn, schema.accounts, owner, "account")
            if conn.execute(select(U.c.id).where(U.c.email == address)).first() is not None:
                raise Conflict(f"{address!r} has an account", [Problem("$.email", "taken")])
            user_id = new_id(conn, "user")
            conn.execute(
                insert(U).values(
                    id=user_id,
                    account_id=owner,
                    email=address,
                    password_hash=hashed,
                    created=now,
                    last_sign_in=None,
                    session_stamp=_new_stamp(),
                )
            )
            return _user(fetch(conn, U, user_id, "user"))

    def set_password(self, email: str, password: str) -> User:
        """Give the user with this email a new password; their sessions end."""
        address = email.strip().lower()
        _check_password(password)
        hashed = _hasher.hash(password)
        with self.transaction() as conn:
            row = conn.execute(select(U.c.id).where(U.c.email == address)).first()
            if row is None:
                raise NotFound(f"no user {address!r}")
            conn.execute(
                update(U)
                .where(U.c.id == row.id)
                .values(password_hash=hashed, session_stamp=_new_stamp())
            )
            return _user(fetch(conn, U, row.id, "user"))

    def list(self) -> list[User]:
        """Every user, oldest first."""
        with self.reading() as conn:
            return [_user(r) for r in conn.execute(select(U).order_by(U.c.id)).mappings()]

    def count(self) -> int:
        with self.reading() as conn:
            return int(conn.execute(select(func.count()).select_from(U)).scalar_one())

    def get(self, user_id: int) -> User:
        with self.reading() as conn:
            return _user(fetch(conn, U, user_id, "user"))

    def authenticate(self, email: str, password: str) -> User:
        """The user whose email and password these are; `Unauthorized` for anything else."""
        address = email.strip().lower()
        with self.reading() as conn:
            row = conn.execute(select(U).where(U.c.email == address)).mappings().first()
        stored = _DUMMY_HASH if row is None else str(row["password_hash"])
        try:
            _hasher.verify(stored, password[:MAX_PASSWORD_CHARS])
        except (VerificationError, InvalidHashError):
            row = None
        if row is None:
            raise Unauthorized("wrong email or password")
        values: dict[str, object] = {"last_sign_in": self.ctx.clock()}
        if _hasher.check_needs_rehash(stored):
            values["password_hash"] = _hasher.hash(password)
        with self.transaction() as conn:
            conn.execute(update(U).where(U.c.id == row["id"]).values(**values))
            return _user(fetch(conn, U, row["id"], "user"))
