"""OAuth 2.0 authorization server: clients, pending consents, authorization codes, tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def _indexes(table: str, *columns: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("revoked", sa.BigInteger(), nullable=True),
        _fk("oauth_clients", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_oauth_clients_client_id")),
        sa.UniqueConstraint("secret_sha256", name=op.f("uq_oauth_clients_secret_sha256")),
    )
    _indexes("oauth_clients", "account_id")

    op.create_table(
        "oauth_requests",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("oauth_client_id", sa.BigInteger(), nullable=False),
        sa.Column("nonce_sha256", sa.String(length=64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=True),
        _fk("oauth_requests", "oauth_client_id", "oauth_clients"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_requests")),
        sa.UniqueConstraint("nonce_sha256", name=op.f("uq_oauth_requests_nonce_sha256")),
    )
    _indexes("oauth_requests", "oauth_client_id")

    op.create_table(
        "oauth_codes",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("oauth_client_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("code_sha256", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=True),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("code_challenge_method", sa.String(length=8), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=True),
        _fk("oauth_codes", "oauth_client_id", "oauth_clients"),
        _fk("oauth_codes", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_codes")),
        sa.UniqueConstraint("code_sha256", name=op.f("uq_oauth_codes_code_sha256")),
    )
    _indexes("oauth_codes", "oauth_client_id", "account_id")

    op.create_table(
        "oauth_tokens",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("oauth_client_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("grant_id", sa.BigInteger(), nullable=False),
        sa.Column("access_sha256", sa.String(length=64), nullable=False),
        sa.Column("refresh_sha256", sa.String(length=64), nullable=True),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("issued", sa.BigInteger(), nullable=False),
        sa.Column("expires_in", sa.Integer(), nullable=False),
        sa.Column("refresh_expires", sa.BigInteger(), nullable=True),
        sa.Column("rotated", sa.BigInteger(), nullable=True),
        sa.Column("revoked", sa.BigInteger(), nullable=True),
        _fk("oauth_tokens", "oauth_client_id", "oauth_clients"),
        _fk("oauth_tokens", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_tokens")),
        sa.UniqueConstraint("access_sha256", name=op.f("uq_oauth_tokens_access_sha256")),
        sa.UniqueConstraint("refresh_sha256", name=op.f("uq_oauth_tokens_refresh_sha256")),
    )
    _indexes("oauth_tokens", "oauth_client_id", "account_id", "grant_id")


def downgrade() -> None:
    for table in ("oauth_tokens", "oauth_codes", "oauth_requests", "oauth_clients"):
        op.drop_table(table)  # their indexes go with them
