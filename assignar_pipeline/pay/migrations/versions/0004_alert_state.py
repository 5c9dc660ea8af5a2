"""Alerts: the state of each asset check and job, per connection, so that a failure is told
once and its recovery once

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import assignar_pipeline.pay.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_state",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("since", assignar_pipeline.pay.types.UtcDateTime(), nullable=False),
        sa.Column("seen", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("source", "subject", name=op.f("pk_alert_state")),
    )


def downgrade() -> None:
    op.drop_table("alert_state")
