"""Reconciliation: Assignar rate evidence, conflicts, resolutions, holds' conflicts, adjustments;
pricing columns on timesheet lines; the resolution behind a link

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import assignar_pipeline.pay.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_RATE = assignar_pipeline.pay.types.ScaledDecimal(4)
_MONEY = assignar_pipeline.pay.types.ScaledDecimal(2)
_UTC = assignar_pipeline.pay.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "assignar_rate",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("task_assignar_id", sa.BigInteger(), nullable=False),
        sa.Column("pay_code", sa.String(length=40), nullable=False),
        sa.Column("rate", _RATE, nullable=False),
        sa.Column("task_name", sa.String(length=200), nullable=True),
        sa.Column("group_assignar_id", sa.BigInteger(), nullable=False),
        sa.Column("group_name", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_assignar_rate_connection_id_connection"),
        ),
        sa.PrimaryKeyConstraint(
            "connection_id", "task_assignar_id", "pay_code", name=op.f("pk_assignar_rate")
        ),
    )
    op.create_table(
        "reconcile_setting",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("project_name_threshold", _RATE, nullable=False),
        sa.Column("worker_name_threshold", _RATE, nullable=False),
        sa.Column("rate_tolerance", _RATE, nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_reconcile_setting_connection_id_connection"),
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_reconcile_setting")),
    )
    op.create_table(
        "sync_conflict",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("fingerprint", sa.String(length=300), nullable=False),
        sa.Column("subject_entity", sa.String(length=20), nullable=False),
        sa.Column("subject_external_id", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.String(length=400), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("first_seen_at", _UTC(), nullable=False),
        sa.Column("resolution_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('duplicate_project', 'worker_mismatch', 'rate_difference', 'locked_changed')",
            name=op.f("ck_sync_conflict_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'resolved', 'superseded')", name=op.f("ck_sync_conflict_status")
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_sync_conflict_connection_id_connection"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_conflict")),
        sa.UniqueConstraint(
            "connection_id",
            "kind",
            "fingerprint",
            name=op.f("uq_sync_conflict_connection_id_kind_fingerprint"),
        ),
    )
    with op.batch_alter_table("sync_conflict", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_conflict_status", ["connection_id", "status", "kind"], unique=False
        )
    op.create_table(
        "sync_conflict_seen",
        sa.Column("conflict_id", sa.String(length=36), nullable=False),
        sa.Column("last_seen_at", _UTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conflict_id"],
            ["sync_conflict.id"],
            name=op.f("fk_sync_conflict_seen_conflict_id_sync_conflict"),
        ),
        sa.PrimaryKeyConstraint("conflict_id", name=op.f("pk_sync_conflict_seen")),
    )
    op.create_table(
        "sync_hold_conflict",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("assignar_id", sa.BigInteger(), nullable=False),
        sa.Column("conflict_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["conflict_id"],
            ["sync_conflict.id"],
            name=op.f("fk_sync_hold_conflict_conflict_id_sync_conflict"),
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_sync_hold_conflict_connection_id_connection"),
        ),
        sa.PrimaryKeyConstraint(
            "connection_id",
            "entity",
            "assignar_id",
            "conflict_id",
            name=op.f("pk_sync_hold_conflict"),
        ),
    )
    with op.batch_alter_table("sync_hold_conflict", schema=None) as batch_op:
        batch_op.create_index("ix_sync_hold_conflict_conflict", ["conflict_id"], unique=False)
    op.create_table(
        "sync_resolution",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("conflict_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("target_pay_id", sa.Integer(), nullable=True),
        sa.Column("rate", _RATE, nullable=True),
        sa.Column("apply_scope", sa.String(length=14), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=False),
        sa.Column("decided_at", _UTC(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "apply_scope IS NULL OR apply_scope IN ('occurrence', 'going_forward')",
            name=op.f("ck_sync_resolution_scope"),
        ),
        sa.CheckConstraint(
            "decision IN ('merge', 'create_new', 'map', 'create_employee', 'ignore', "
            "'use_assignar_rate', 'keep_pay_rate', 'set_rate', 'accept_adjustment', "
            "'reject_adjustment')",
            name=op.f("ck_sync_resolution_decision"),
        ),
        sa.ForeignKeyConstraint(
            ["conflict_id"],
            ["sync_conflict.id"],
            name=op.f("fk_sync_resolution_conflict_id_sync_conflict"),
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_sync_resolution_connection_id_connection"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_user_id"],
            ["pay_user.id"],
            name=op.f("fk_sync_resolution_decided_by_user_id_pay_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_resolution")),
        sa.UniqueConstraint("conflict_id", name=op.f("uq_sync_resolution_conflict_id")),
    )
    op.create_table(
        "timesheet_adjustment",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("timesheet_id", sa.Integer(), nullable=False),
        sa.Column("conflict_id", sa.String(length=36), nullable=False),
        sa.Column("delta_minutes", sa.Integer(), nullable=False),
        sa.Column("delta_amount", _MONEY, nullable=True),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=False),
        sa.Column("decided_at", _UTC(), nullable=False),
        sa.CheckConstraint(
            "status IN ('approved', 'rejected')", name=op.f("ck_timesheet_adjustment_status")
        ),
        sa.ForeignKeyConstraint(
            ["conflict_id"],
            ["sync_conflict.id"],
            name=op.f("fk_timesheet_adjustment_conflict_id_sync_conflict"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_user_id"],
            ["pay_user.id"],
            name=op.f("fk_timesheet_adjustment_decided_by_user_id_pay_user"),
        ),
        sa.ForeignKeyConstraint(
            ["timesheet_id"],
            ["timesheet.id"],
            name=op.f("fk_timesheet_adjustment_timesheet_id_timesheet"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timesheet_adjustment")),
        sa.UniqueConstraint("conflict_id", name=op.f("uq_timesheet_adjustment_conflict_id")),
    )
    with op.batch_alter_table("timesheet_adjustment", schema=None) as batch_op:
        batch_op.create_index("ix_timesheet_adjustment_timesheet", ["timesheet_id"], unique=False)

    with op.batch_alter_table("integration_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolution_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_integration_link_resolution_id_sync_resolution"),
            "sync_resolution",
            ["resolution_id"],
            ["id"],
        )
    with op.batch_alter_table("timesheet", schema=None) as batch_op:
        batch_op.add_column(sa.Column("price_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("timesheet_line", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pay_code_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rate", _RATE, nullable=True))
        batch_op.add_column(sa.Column("amount", _MONEY, nullable=True))
        batch_op.add_column(sa.Column("rate_source", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("pay_rate_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resolution_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_timesheet_line_pay_code_id_pay_code"),
            "pay_code",
            ["pay_code_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_timesheet_line_pay_rate_id_pay_rate"),
            "pay_rate",
            ["pay_rate_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_timesheet_line_resolution_id_sync_resolution"),
            "sync_resolution",
            ["resolution_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("timesheet_line", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_timesheet_line_resolution_id_sync_resolution"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_timesheet_line_pay_rate_id_pay_rate"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_timesheet_line_pay_code_id_pay_code"), type_="foreignkey"
        )
        for column in (
            "resolution_id",
            "pay_rate_id",
            "rate_source",
            "amount",
            "rate",
            "pay_code_id",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("timesheet", schema=None) as batch_op:
        batch_op.drop_column("price_hash")
    with op.batch_alter_table("integration_link", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_integration_link_resolution_id_sync_resolution"), type_="foreignkey"
        )
        batch_op.drop_column("resolution_id")
    with op.batch_alter_table("timesheet_adjustment", schema=None) as batch_op:
        batch_op.drop_index("ix_timesheet_adjustment_timesheet")
    op.drop_table("timesheet_adjustment")
    op.drop_table("sync_resolution")
    with op.batch_alter_table("sync_hold_conflict", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_hold_conflict_conflict")
    op.drop_table("sync_hold_conflict")
    op.drop_table("sync_conflict_seen")
    with op.batch_alter_table("sync_conflict", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_conflict_status")
    op.drop_table("sync_conflict")
    op.drop_table("reconcile_setting")
    op.drop_table("assignar_rate")
