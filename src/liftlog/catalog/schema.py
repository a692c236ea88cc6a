"""The catalog's tables (SQLAlchemy Core), as the migrations leave them at head.

Every object id comes from one table, `ids`, so ids of different kinds never collide (Optimizely's
ids are globally unique, and a datafile mixes experiment, variation, event, audience and attribute
ids in one namespace). Times are epoch milliseconds. Every editable object has a `version` that
starts at 1 and grows by one on each change: the API turns it into an ETag for If-Match.
A test compares this module with the migrated database, so the two cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


def _ref(target: str, *, nullable: bool = False, cascade: bool = True) -> Column[int]:
    name = target.split(".")[0].removesuffix("s") + "_id"
    return Column(
        name,
        BigInteger,
        ForeignKey(target, ondelete="CASCADE" if cascade else "SET NULL"),
        nullable=nullable,
        index=True,
    )


def _stamps() -> list[Column[int]]:
    return [
        Column("version", Integer, nullable=False),
        Column("created", BigInteger, nullable=False),
        Column("last_modified", BigInteger, nullable=False),
    ]


ids = Table(
    "ids",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(255), nullable=False),
    *_stamps(),
)

projects = Table(
    "projects",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("accounts.id"),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("platform", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("sdk_key", String(64), nullable=False, unique=True),
    Column("environment_key", String(64), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("anonymize_ip", Boolean, nullable=False),
    Column("bot_filtering", Boolean, nullable=False),
    Column("confidence_threshold", Float, nullable=False),
    *_stamps(),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("projects.id"),
    Column("key", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("campaign_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("audience_conditions", Text, nullable=False),
    Column("attribution_window_seconds", Integer, nullable=True),
    Column("holdback", Integer, nullable=False),
    Column("whitelist", Text, nullable=False),
    *_stamps(),
    UniqueConstraint("project_id", "key"),
)

variations = Table(
    "variations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("experiments.id"),
    Column("position", Integer, nullable=False),
    Column("key", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("weight", Integer, nullable=False),
    UniqueConstraint("experiment_id", "key"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("projects.id"),
    Column("key", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("category", String(32), nullable=False),
    Column("archived", Boolean, nullable=False),
    *_stamps(),
    UniqueConstraint("project_id", "key"),
)

experiment_metrics = Table(
    "experiment_metrics",
    metadata,
    _ref("experiments.id"),
    Column("position", Integer, nullable=False),
    Column("event_id", BigInteger, ForeignKey("events.id"), nullable=False, index=True),
    Column("aggregator", String(16), nullable=False),
    Column("field", String(16), nullable=True),
    Column("winning_direction", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    UniqueConstraint("experiment_id", "position"),
)

status_history = Table(
    "status_history",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    _ref("experiments.id"),
    Column("status", String(16), nullable=False),
    Column("at", BigInteger, nullable=False),
)

attributes = Table(
    "attributes",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("projects.id"),
    Column("key", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("archived", Boolean, nullable=False),
    *_stamps(),
    UniqueConstraint("project_id", "key"),
)

audiences = Table(
    "audiences",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("projects.id"),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("conditions", Text, nullable=False),
    Column("archived", Boolean, nullable=False),
    *_stamps(),
)

groups = Table(
    "groups",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("projects.id"),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("archived", Boolean, nullable=False),
    *_stamps(),
)

group_entities = Table(
    "group_entities",
    metadata,
    _ref("groups.id"),
    Column(
        "experiment_id",
        BigInteger,
        ForeignKey("experiments.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("position", Integer, nullable=False),
    Column("weight", Integer, nullable=False),
)

list_attributes = Table(
    "list_attributes",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("projects.id"),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("list_type", String(32), nullable=False),
    Column("key_field", String(255), nullable=False),
    Column("list_content", Text, nullable=False),
    Column("archived", Boolean, nullable=False),
    *_stamps(),
    UniqueConstraint("project_id", "name"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("accounts.id"),
    Column("name", String(255), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("created", BigInteger, nullable=False),
    Column("last_used", BigInteger, nullable=True),
    Column("revoked", BigInteger, nullable=True),
)

# OAuth 2.0 (liftlog.catalog.oauth). Secrets, codes and tokens are stored as SHA-256 only.
# `oauth_client_id` is the row id of a client; `client_id` is the public identifier it is issued.
oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("accounts.id"),
    Column("client_id", String(64), nullable=False, unique=True),
    Column("secret_sha256", String(64), nullable=True, unique=True),  # NULL: a public client
    Column("name", String(255), nullable=False),
    Column("redirect_uris", Text, nullable=False),  # JSON array of exact URIs
    Column("scope", String(64), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("revoked", BigInteger, nullable=True),
    # As registered (`AUTH_METHODS`); a confidential client may use either secret method.
    Column("auth_method", String(32), nullable=False),
)

# A consent page that was shown: its form's nonce, bound to the authorization request's parameters.
oauth_requests = Table(
    "oauth_requests",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("oauth_clients.id"),
    Column("nonce_sha256", String(64), nullable=False, unique=True),
    Column("params", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("used", BigInteger, nullable=True),
)

oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("oauth_clients.id"),
    _ref("accounts.id"),
    Column("code_sha256", String(64), nullable=False, unique=True),
    Column("redirect_uri", Text, nullable=True),
    Column("scope", String(64), nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(8), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("used", BigInteger, nullable=True),
)

# One row per issued access token and its refresh token. `grant_id` is the id of the code the
# chain of refreshes started from, so a replayed code or refresh token can end the whole chain.
oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("oauth_clients.id"),
    _ref("accounts.id"),
    Column("grant_id", BigInteger, nullable=False, index=True),
    Column("access_sha256", String(64), nullable=False, unique=True),
    Column("refresh_sha256", String(64), nullable=True, unique=True),
    Column("scope", String(64), nullable=False),
    Column("issued", BigInteger, nullable=False),
    Column("expires_in", Integer, nullable=False),  # seconds, as in the token response
    Column("refresh_expires", BigInteger, nullable=True),
    Column("rotated", BigInteger, nullable=True),  # when the refresh token was exchanged
    Column("revoked", BigInteger, nullable=True),
)

# People who sign in to the web pages (`liftlog.catalog.users`). Only an argon2id hash of the
# password is kept; `email` is stored lower-cased so that sign-in ignores its case.
users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    _ref("accounts.id"),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("last_sign_in", BigInteger, nullable=True),
    # Sessions hold it; a new password draws a new one (`liftlog.catalog.users`).
    Column("session_stamp", String(32), nullable=False),
)
