"""OAuth clients: the token endpoint authentication method they registered with, so that the
registration's answer and the client listing name it (RFC 7591 §3.2.1).

Clients from before keep what their answer said: ``none`` without a secret,
``client_secret_basic`` with one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auth_method", sa.String(length=32), nullable=True))
    clients = sa.table(
        "oauth_clients", sa.column("secret_sha256", sa.String()), sa.column("auth_method")
    )
    conn = op.get_bind()
    conn.execute(
        clients.update().where(clients.c.secret_sha256.is_(None)).values(auth_method="none")
    )
    conn.execute(
        clients.update()
        .where(clients.c.secret_sha256.is_not(None))
        .values(auth_method="client_secret_basic")
    )
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.alter_column("auth_method", existing_type=sa.String(length=32), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_column("auth_method")
