"""An index for looking Pay's rate up per scope and work date (the set-based timesheet load)

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_pay_rate_lookup",
        "pay_rate",
        ["team_id", "pay_code_id", "employee_id", "project_id", "effective_from"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_pay_rate_lookup", table_name="pay_rate")
