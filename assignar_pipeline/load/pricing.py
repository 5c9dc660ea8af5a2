"""A timesheet's rate: Pay's, compared with Assignar's; a difference is a Rate Difference
conflict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.pay.tables import employee
from assignar_pipeline.reconcile.conflicts import RATE_DIFFERENCE, ConflictBook
from assignar_pipeline.reconcile.policy import thresholds_for
from assignar_pipeline.reconcile.rates import (
    ORDINARY,
    RATE_UNIT,
    PayRate,
    PayRates,
    assignar_rates,
    differs,
    rate_fingerprint,
    show_rate,
)


@dataclass(frozen=True)
class Pricing:
    """The rate a timesheet's lines are paid at, and where it came from (NULL: Pay has none)."""

    rate: Any = None
    rate_source: str | None = None
    pay_rate_id: int | None = None
    resolution_id: int | None = None


class Pricer:
    """Pay's rate for a timesheet, compared with Assignar's; a difference is a conflict."""

    def __init__(self, conn: Connection, connection: Any, book: ConflictBook) -> None:
        self.book = book
        self.connection = connection
        self.pay = PayRates(conn, connection.team_id, ORDINARY)
        self.assignar = assignar_rates(conn, connection.id, ORDINARY)
        self.tolerance = thresholds_for(conn, connection.id).rate_tolerance
        self.resolutions = {r.id: r for r in book.resolutions.values()}
        self._names: dict[int, Any] = {}
        self.conn = conn

    def price(self, staged: Any, employee_id: int, project_id: int | None) -> Pricing | Any:
        """A `Pricing`, or the open Rate Difference conflict row the timesheet waits on."""
        pay = self.pay.resolve(employee_id, project_id, staged.work_date)
        if pay is None:
            return Pricing()  # no Pay rate at all: nothing to disagree with; Pay's rules price it
        at_pay = Pricing(pay.rate, pay.scope, pay.id)
        theirs = self.assignar.get(staged.task_assignar_id)
        if theirs is None or not differs(theirs.rate, pay.rate, self.tolerance):
            return at_pay
        if self._agreed(pay, theirs.rate):
            return at_pay
        fingerprint = rate_fingerprint(employee_id, ORDINARY, None, theirs.rate, pay)
        row = self.book.observe(
            RATE_DIFFERENCE,
            fingerprint,
            subject_entity="worker",
            subject_external_id=staged.user_assignar_id,
            **self._describe(employee_id, theirs, pay),
        )
        if row.status != "resolved":
            return row
        resolution = self.book.resolution(row.id)
        if resolution.decision == "keep_pay_rate":
            return at_pay
        if resolution.apply_scope == "going_forward" and staged.work_date < (
            resolution.effective_from or staged.work_date
        ):
            return at_pay  # before the date the person chose, Pay's rate stands
        return Pricing(resolution.rate, "resolution", None, resolution.id)

    def _agreed(self, pay: PayRate, assignar_rate: Any) -> bool:
        """Pay's rate was set by a resolution made while Assignar said exactly this rate."""
        if not pay.source.endswith("_resolution") or not pay.source_ref:
            return False
        resolution = self.resolutions.get(int(pay.source_ref))
        if resolution is None:
            return False
        conflict = self.book.rows.get(resolution.conflict_id)
        said = conflict.details.get("assignar", {}).get("rate") if conflict else None
        return said == str(assignar_rate.quantize(RATE_UNIT))

    def _describe(self, employee_id: int, theirs: Any, pay: PayRate) -> dict[str, Any]:
        person = self._names.get(employee_id)
        if person is None:
            person = self.conn.execute(
                sa.select(
                    employee.c.first_name, employee.c.last_name, employee.c.employee_number
                ).where(employee.c.id == employee_id)
            ).one()
            self._names[employee_id] = person
        name = f"{person.first_name} {person.last_name}"
        assignar_rate = str(theirs.rate.quantize(RATE_UNIT))
        until = f" until {pay.effective_to}" if pay.effective_to else ""
        return {
            "summary": (
                f"{name} ({person.employee_number or 'no employee number'}) {ORDINARY}: Assignar "
                f"{show_rate(theirs.rate)} ({theirs.source}), Pay {show_rate(pay.rate)} "
                f"({pay.scope} rate from "
                f"{pay.effective_from}{until})"
            ),
            "details": {
                "employee": {
                    "id": employee_id,
                    "name": name,
                    "employee_number": person.employee_number,
                },
                "pay_code": ORDINARY,
                "project_id": None,
                "assignar": {
                    "rate": assignar_rate,
                    "source": theirs.source,
                    "task_id": theirs.task_id,
                    "group_id": theirs.group_id,
                },
                "pay": {
                    "rate": str(pay.rate),
                    "pay_rate_id": pay.id,
                    "scope": pay.scope,
                    "effective_from": pay.effective_from.isoformat(),
                    "effective_to": pay.effective_to.isoformat() if pay.effective_to else None,
                    "source": pay.source,
                },
                "tolerance": str(self.tolerance),
            },
        }
