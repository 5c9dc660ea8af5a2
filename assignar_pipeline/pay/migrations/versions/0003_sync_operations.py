"""Sync operations: per-connection sync settings, change-detection cursors, runs, rate limit,
bulk imports and notifications

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import assignar_pipeline.pay.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: New `connection` columns: (name, type, server default, check constraint or None).
CONNECTION_COLUMNS = [
    ("sync_frequency", "VARCHAR(7)", "'hourly'", "sync_frequency IN ('hourly', 'daily', 'weekly')"),
    ("sync_time", "VARCHAR(5)", "'06:00'", None),
    ("sync_weekday", "INTEGER", "1", "sync_weekday BETWEEN 1 AND 7"),
    ("auto_sync_timesheets", "BOOLEAN", "true", None),
    ("auto_sync_orders", "BOOLEAN", "true", None),
    ("lookback_days", "INTEGER", "3", "lookback_days BETWEEN 0 AND 31"),
    ("notify_emails", "TEXT", None, None),
    ("webhook_url", "VARCHAR(500)", None, None),
]


def _add_connection_columns() -> None:
    """Plain ALTER TABLE ADD COLUMN on both engines; the CHECKs on PostgreSQL only.

    SQLite can add a column but not a table constraint without rebuilding `connection`, which the
    foreign keys pointing at it make unsafe in a migration; there `sync_settings` validating every
    value is the guard (and 0003 can be downgraded, since SQLite drops unconstrained columns).
    """
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, type_, default, check in CONNECTION_COLUMNS:
        column = f"{name} {type_}"
        if default is not None:
            column += f" DEFAULT {default} NOT NULL"
        op.execute(f"ALTER TABLE connection ADD COLUMN {column}")
        if check and postgresql:
            op.create_check_constraint(f"ck_connection_{name}", "connection", check)


def upgrade() -> None:
    _add_connection_columns()
    op.create_table(
        "sync_cursor",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("modified_since", assignar_pipeline.pay.types.UtcDateTime(), nullable=False),
        sa.Column("delta_at", assignar_pipeline.pay.types.UtcDateTime(), nullable=True),
        sa.Column("lookback_at", assignar_pipeline.pay.types.UtcDateTime(), nullable=True),
        sa.Column("memo", sa.JSON(), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_sync_cursor_connection_id_connection"),
        ),
        sa.PrimaryKeyConstraint("connection_id", "entity", name=op.f("pk_sync_cursor")),
    )
    op.create_table(
        "sync_setting",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("updated_at", assignar_pipeline.pay.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sync_setting")),
    )
    op.create_table(
        "sync_run",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("started_at", assignar_pipeline.pay.types.UtcDateTime(), nullable=False),
        sa.Column("finished_at", assignar_pipeline.pay.types.UtcDateTime(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_sync_run")),
    )
    op.create_table(
        "rate_limit_bucket",
        sa.Column("account", sa.String(length=250), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_rate_limit_bucket")),
    )
    op.create_table(
        "bulk_import",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("not_before", assignar_pipeline.pay.types.UtcDateTime(), nullable=False),
        sa.Column("created_at", assignar_pipeline.pay.types.UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("backfill_id", sa.String(length=64), nullable=True),
        sa.Column("launched_at", assignar_pipeline.pay.types.UtcDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_import")),
    )
    op.create_index("ix_bulk_import_pending", "bulk_import", ["status", "not_before"])
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(length=120), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("sent_at", assignar_pipeline.pay.types.UtcDateTime(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_notification_connection_id_connection"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
        sa.UniqueConstraint(
            "connection_id",
            "event_key",
            "channel",
            name=op.f("uq_notification_connection_id_event_key_channel"),
        ),
    )


def downgrade() -> None:
    op.drop_table("notification")
    op.drop_index("ix_bulk_import_pending", table_name="bulk_import")
    op.drop_table("bulk_import")
    op.drop_table("rate_limit_bucket")
    op.drop_table("sync_run")
    op.drop_table("sync_setting")
    op.drop_table("sync_cursor")
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, _, _, check in reversed(CONNECTION_COLUMNS):
        if check and postgresql:
            op.drop_constraint(f"ck_connection_{name}", "connection", type_="check")
        op.drop_column("connection", name)
