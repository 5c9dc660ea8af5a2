"""Reconciliation policy: which statuses load, and per-connection thresholds
(`reconcile_setting`) with their defaults."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.pay.tables import reconcile_setting
from assignar_pipeline.reconcile.matching import PROJECT_NAME_THRESHOLD, WORKER_NAME_THRESHOLD
from assignar_pipeline.reconcile.rates import RATE_TOLERANCE

#: Assignar statuses at or above which a timesheet is imported (Pay's default threshold).
APPROVED_STATUSES = frozenset(
    {
        "APPROVED",
        "APPROVED_WITH_PAY_RATES",
        "APPROVED_WITH_CHARGE_RATES",
        "APPROVED_WITH_PAY_AND_CHARGE_RATES",
    }
)
#: Pay timesheet statuses a load never changes (a later upstream change becomes an adjustment).
LOCKED_STATUSES = frozenset({"processed", "paid"})


@dataclass(frozen=True)
class Thresholds:
    project_name: float = PROJECT_NAME_THRESHOLD
    worker_name: float = WORKER_NAME_THRESHOLD
    rate_tolerance: Decimal = RATE_TOLERANCE


def thresholds_for(conn: Connection, connection_id: int) -> Thresholds:
    row = conn.execute(
        sa.select(reconcile_setting).where(reconcile_setting.c.connection_id == connection_id)
    ).first()
    if row is None:
        return Thresholds()
    return Thresholds(
        float(row.project_name_threshold), float(row.worker_name_threshold), row.rate_tolerance
    )


def set_thresholds(
    conn: Connection,
    connection_id: int,
    *,
    project_name: float | None = None,
    worker_name: float | None = None,
    rate_tolerance: Decimal | None = None,
) -> Thresholds:
    """Change some thresholds of a connection (the others keep their value); return them all."""
    current = thresholds_for(conn, connection_id)
    new = Thresholds(
        current.project_name if project_name is None else project_name,
        current.worker_name if worker_name is None else worker_name,
        current.rate_tolerance if rate_tolerance is None else rate_tolerance,
    )
    for name, value in (("project", new.project_name), ("worker", new.worker_name)):
        if not 0 < value <= 1:
            raise ValueError(f"The {name} name threshold must be above 0 and at most 1: {value}")
    if new.rate_tolerance < 0:
        raise ValueError(f"The rate tolerance cannot be negative: {new.rate_tolerance}")
    values = {
        "project_name_threshold": Decimal(str(new.project_name)).quantize(Decimal("0.0001")),
        "worker_name_threshold": Decimal(str(new.worker_name)).quantize(Decimal("0.0001")),
        "rate_tolerance": Decimal(new.rate_tolerance).quantize(Decimal("0.0001")),
    }
    where = reconcile_setting.c.connection_id == connection_id
    if conn.execute(sa.select(reconcile_setting.c.connection_id).where(where)).first():
        conn.execute(reconcile_setting.update().where(where).values(values))
    else:
        conn.execute(reconcile_setting.insert().values(connection_id=connection_id, **values))
    return new
