"""Rates: what Pay pays (its own append-only `pay_rate`), what Assignar says, and the comparison.

Where Assignar exposes pay rates: the API description lists `GET /tasks/{taskId}/pay-rate-groups`
(the pay-rate groups of a task, i.e. a Pay classification/role) and `GET /projects/{projectId}/
pay-rate-groups/{rateGroupId}` (one group by id — there is no list of a project's groups, so they
cannot be discovered). `TimesheetPayItem` and `TimesheetChargeItem` are schemas no endpoint
returns. So Assignar's evidence here is the task's pay-rate group: the rate for the pay code of a
timesheet line (ordinary time: `ORD`) of the timesheet's task. It is evidence only: Pay's rate wins
by default, and a differing Assignar rate becomes a Rate Difference conflict, never a Pay rate.

Pay's rate for a line (pay-domain.md §3.3, the scopes Pay's `pay_rate` has): employee + project,
then employee, then project, then the team default, each effective on the work date.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.pay.database import lock_connection
from assignar_pipeline.pay.tables import assignar_rate, pay_code, pay_rate, sync_log
from assignar_pipeline.per_connection import for_each_connection
from assignar_pipeline.synclog import write_log

ORDINARY = "ORD"
#: Rates compare at Pay's scale: 4 decimals.
RATE_UNIT = Decimal("0.0001")
CENT = Decimal("0.01")
#: Default tolerance: any difference in Pay's scale is a conflict.
RATE_TOLERANCE = Decimal("0")
#: How old Assignar's rates may be when timesheets load (`PIPELINE_RATES_MAX_AGE_MINUTES`). Every
#: path that loads timesheets fetches them first when they are older, and the loader refuses a
#: connection whose rates are older still, so no timesheet skips the Rate Difference check. An
#: hour keeps an hourly sync to one fetch of rates per run, and only when timesheets changed.
RATES_MAX_AGE = timedelta(minutes=int(os.environ.get("PIPELINE_RATES_MAX_AGE_MINUTES") or 60))


@dataclass(frozen=True)
class PayRate:
    id: int
    employee_id: int | None
    project_id: int | None
    rate: Decimal
    effective_from: date
    effective_to: date | None
    source: str
    source_ref: str | None

    @property
    def scope(self) -> str:
        if self.employee_id is not None:
            return "employee_project" if self.project_id is not None else "employee"
        return "project" if self.project_id is not None else "team"

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)


def scope_key(employee_id: int | None, project_id: int | None) -> str:
    """The canonical scope string `pay_rate` is unique on (as the seed writes it)."""
    return f"e={employee_id or ''};p={project_id or ''}"


class PayRates:
    """A team's rates for one pay code, read once per load pass."""

    def __init__(self, conn: Connection, team_id: int, code: str = ORDINARY) -> None:
        self.pay_code_id: int | None = conn.execute(
            sa.select(pay_code.c.id).where(pay_code.c.team_id == team_id, pay_code.c.code == code)
        ).scalar()
        self.rows: list[PayRate] = []
        if self.pay_code_id is not None:
            self.rows = [
                PayRate(
                    r.id,
                    r.employee_id,
                    r.project_id,
                    r.rate,
                    r.effective_from,
                    r.effective_to,
                    r.source,
                    r.source_ref,
                )
                for r in conn.execute(
                    sa.select(pay_rate)
                    .where(
                        pay_rate.c.team_id == team_id, pay_rate.c.pay_code_id == self.pay_code_id
                    )
                    .order_by(pay_rate.c.effective_from, pay_rate.c.id)
                )
            ]
        self._by_scope: dict[tuple[int | None, int | None], list[PayRate]] = {}
        for row in self.rows:
            self._by_scope.setdefault((row.employee_id, row.project_id), []).append(row)

    def resolve(self, employee_id: int, project_id: int | None, day: date) -> PayRate | None:
        """The most specific rate effective on `day`, or None when Pay has none."""
        keys = [(employee_id, None), (None, None)]
        if project_id is not None:
            keys = [(employee_id, project_id), keys[0], (None, project_id), keys[1]]
        for key in keys:
            for row in self._by_scope.get(key, ()):
                if row.covers(day):
                    return row
        return None


@dataclass(frozen=True)
class AssignarRate:
    task_id: int
    rate: Decimal
    task_name: str | None
    group_id: int
    group_name: str | None

    @property
    def source(self) -> str:
        return (
            f"Assignar task {self.task_name or self.task_id!r}, pay-rate group {self.group_name!r}"
        )


def assignar_rates(conn: Connection, connection_id: int, code: str = ORDINARY) -> dict:
    """Task id → Assignar's rate for `code`, as last fetched."""
    return {
        r.task_assignar_id: AssignarRate(
            r.task_assignar_id, r.rate, r.task_name, r.group_assignar_id, r.group_name
        )
        for r in conn.execute(
            sa.select(assignar_rate).where(
                assignar_rate.c.connection_id == connection_id, assignar_rate.c.pay_code == code
            )
        )
    }


def show_rate(rate: Decimal | None) -> str:
    """A rate as people write it: 44.80, or 44.8125 when it has more than cents."""
    if rate is None:
        return "none"
    cents = rate.quantize(CENT)
    return str(cents if cents == rate else rate.normalize())


def amount(minutes: int, rate: Decimal | None) -> Decimal | None:
    """minutes × rate / 60, rounded half-up to cents once per line (totals sum rounded lines)."""
    if rate is None:
        return None
    return (Decimal(minutes) * rate / 60).quantize(CENT, rounding=ROUND_HALF_UP)


def differs(assignar: Decimal, pay: Decimal, tolerance: Decimal) -> bool:
    return abs(assignar.quantize(RATE_UNIT) - pay.quantize(RATE_UNIT)) > tolerance


def rate_fingerprint(
    employee_id: int, code: str, project_id: int | None, assignar: Decimal, pay: PayRate
) -> str:
    """The disagreement, keyed on both values: either side changing is a new disagreement."""
    return (
        f"employee={employee_id};code={code};project={project_id or '-'};"
        f"assignar={assignar.quantize(RATE_UNIT)};pay_rate={pay.id}"
    )


def price_hash(parts: Iterable[Any]) -> str:
    return hashlib.sha256(repr(tuple(parts)).encode()).hexdigest()


# -- fetching Assignar's rates -------------------------------------------------------------------


@dataclass(frozen=True)
class FetchedRate:
    task_id: int
    pay_code: str
    rate: Decimal
    task_name: str | None
    group_id: int
    group_name: str | None


def fetch_task_rates(client: Any) -> Iterator[FetchedRate]:
    """Each task's pay-rate groups from Assignar; per task and pay code the group of the lowest
    `priority` number wins (ties: the lower id), like Assignar's own ordering of groups."""
    for task in client.iter_records("tasks"):
        if task.get("active") is False:
            continue
        groups = list(client.iter_records(f"tasks/{int(task['id'])}/pay-rate-groups"))
        best: dict[str, tuple[tuple[int, int], FetchedRate]] = {}
        for group in groups:
            if group.get("active") is False:
                continue
            order = (int(group.get("priority") or 0), int(group["id"]))
            for item in group.get("pay_rates") or []:
                code = (item.get("pay_code") or {}).get("code")
                if not code or item.get("rate") is None:
                    continue
                fetched = FetchedRate(
                    int(task["id"]),
                    str(code),
                    Decimal(str(item["rate"])).quantize(RATE_UNIT),
                    task.get("name"),
                    int(group["id"]),
                    group.get("name"),
                )
                if code not in best or order < best[code][0]:
                    best[code] = (order, fetched)
        for _, fetched in sorted(best.values(), key=lambda b: b[1].pay_code):
            yield fetched


def stage_rates(conn: Connection, connection_id: int, fetched: Iterable[FetchedRate]) -> dict:
    """Make `assignar_rate` equal what was fetched; write only what changed. Returns counts."""
    current = {
        (r.task_assignar_id, r.pay_code): r
        for r in conn.execute(
            sa.select(assignar_rate).where(assignar_rate.c.connection_id == connection_id)
        )
    }
    counts = {"inserted": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    seen = set()
    for f in fetched:
        key = (f.task_id, f.pay_code)
        seen.add(key)
        values = {
            "rate": f.rate,
            "task_name": f.task_name,
            "group_assignar_id": f.group_id,
            "group_name": f.group_name,
        }
        old = current.get(key)
        if old is None:
            conn.execute(
                assignar_rate.insert().values(
                    connection_id=connection_id,
                    task_assignar_id=f.task_id,
                    pay_code=f.pay_code,
                    **values,
                )
            )
            counts["inserted"] += 1
        elif any(getattr(old, k) != v for k, v in values.items()):
            conn.execute(
                assignar_rate.update()
                .where(
                    assignar_rate.c.connection_id == connection_id,
                    assignar_rate.c.task_assignar_id == f.task_id,
                    assignar_rate.c.pay_code == f.pay_code,
                )
                .values(**values)
            )
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    for task_id, code in current.keys() - seen:
        conn.execute(
            assignar_rate.delete().where(
                assignar_rate.c.connection_id == connection_id,
                assignar_rate.c.task_assignar_id == task_id,
                assignar_rate.c.pay_code == code,
            )
        )
        counts["deleted"] += 1
    return counts


@dataclass
class RatesResult:
    connection_key: str
    counts: dict[str, int]
    error: str | None = None


def refresh_rates(
    engine: Any, connections: Iterable[Any], open_client: Any, *, run_id: str
) -> list[RatesResult]:
    """Fetch and stage Assignar's task rates for each connection, logged in sync_log (entity
    `pay_rates`); a connection whose fetch fails does not stop the others."""

    def step(connection: Any, client: Any) -> RatesResult:
        started = datetime.now(UTC)
        fetched = list(fetch_task_rates(client))
        with engine.begin() as conn:
            lock_connection(conn, connection.id)
            counts = stage_rates(conn, connection.id, fetched)
            write_log(
                conn,
                connection.id,
                run_id,
                "pay_rates",
                started_at=started,
                finished_at=datetime.now(UTC),
                fetched=sum(counts.values()) - counts["deleted"],
                inserted=counts["inserted"],
                updated=counts["updated"],
                unchanged=counts["unchanged"],
                voided=counts["deleted"],
            )
        return RatesResult(connection.key, counts)

    def failed(connection: Any, error: str, kind: str) -> RatesResult:
        return RatesResult(connection.key, {}, error)

    return for_each_connection(
        engine, connections, open_client, step, failed, run_id=run_id, entity="pay_rates"
    )


def rates_fetched_at(conn: Connection, connection_ids: Sequence[int]) -> dict[int, datetime]:
    """When each connection's Assignar rates were last fetched without an error."""
    rows = conn.execute(
        sa.select(sync_log.c.connection_id, sa.func.max(sync_log.c.finished_at))
        .where(
            sync_log.c.connection_id.in_(list(connection_ids)),
            sync_log.c.entity == "pay_rates",
            sync_log.c.error.is_(None),
        )
        .group_by(sync_log.c.connection_id)
    ).all()
    return {connection_id: _utc(at) for connection_id, at in rows if at is not None}


def stale_rates(engine: Any, connections: Iterable[Any], now: datetime) -> list[Any]:
    """The connections importing timesheets whose rates are older than `RATES_MAX_AGE`."""
    wanted = [c for c in connections if c.import_timesheets]
    with engine.connect() as conn:
        fetched = rates_fetched_at(conn, [c.id for c in wanted])
    return [c for c in wanted if c.id not in fetched or now - fetched[c.id] > RATES_MAX_AGE]


def refresh_stale_rates(
    engine: Any, connections: Iterable[Any], open_client: Any, *, run_id: str
) -> list[RatesResult]:
    """Fetch Assignar's rates for the connections whose rates are stale, before a timesheet load."""
    stale = stale_rates(engine, connections, datetime.now(UTC))
    return refresh_rates(engine, stale, open_client, run_id=run_id) if stale else []


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
