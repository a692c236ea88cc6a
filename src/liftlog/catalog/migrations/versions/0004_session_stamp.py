"""Users: a session stamp of its own, so that rehashing a password ends no session.

The stamp was derived from the password hash, which a sign-in rewrites when argon2's parameters
change; a new password now draws a new stamp instead. Existing users keep the stamp their
sessions were signed in with.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 10:00:00.000000
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_stamp", sa.String(length=32), nullable=True))
    users = sa.table(
        "users",
        sa.column("id", sa.BigInteger()),
        sa.column("password_hash", sa.String()),
        sa.column("session_stamp", sa.String()),
    )
    conn = op.get_bind()
    for user_id, password_hash in conn.execute(sa.select(users.c.id, users.c.password_hash)):
        stamp = hashlib.sha256(str(password_hash).encode()).hexdigest()[:16]  # as sessions hold
        conn.execute(users.update().where(users.c.id == user_id).values(session_stamp=stamp))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("session_stamp", existing_type=sa.String(length=32), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_stamp")
