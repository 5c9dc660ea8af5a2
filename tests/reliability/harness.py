"""The fault matrix's parts: a small tenant, upstream edits per entity, the faults, and the verdict
that compares Pay with Assignar's truth after every case.

A case is: a Pay database already holding one clean import (copied from a template, so a case does
not pay for the first import), an edit upstream of the entity under test, a run with the fault
injected on that entity's path, then a run without faults. After each run the verdict says what Pay
lost or doubled; after the clean run Pay must equal the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assignar_pipeline.load import APPROVED_STATUSES
from assignar_pipeline.pay import tables as t
from assignar_pipeline.simulator import SimulatorServer, TenantConfig
from assignar_pipeline.status import sync_status
from resources import AssignarResource
from tests.support.pay import table_checksums
from tests.support.pipeline import BOOKKEEPING, TODAY, Pipeline, minutes

#: A tenant small enough that a run takes well under a second, big enough for several pages.
SMALL = TenantConfig(workers=8, projects=4, days=10, orders=40)
#: One week, ending with the simulator's today: one window piece.
WINDOW = (TODAY - timedelta(days=6), TODAY + timedelta(days=1))
#: Records per API page and per staging chunk in the matrix, so a window spans several of each
#: and a fault can land between two committed chunks.
PAGE_SIZE = 4
CHUNK_RECORDS = 4
ENTITIES = ("projects", "workers", "timesheets", "orders")
RESOURCE = {
    "projects": "projects",
    "workers": "users",
    "timesheets": "timesheets-expanded",
    "orders": "orders",
}
#: What a case materializes for each entity: its extract and its Pay asset.
ASSETS = {
    "projects": ["assignar_projects", "pay_projects"],
    "workers": ["assignar_workers", "pay_employees"],
    "timesheets": ["assignar_timesheets", "pay_timesheets"],
    "orders": ["assignar_orders", "pay_orders"],
}
PATH = {entity: f"/v2/{RESOURCE[entity]}" for entity in ENTITIES}
PATH["projects"] += "/"
STAGING = {
    "projects": t.staging_project,
    "workers": t.staging_worker,
    "timesheets": t.staging_timesheet,
    "orders": t.staging_order,
}
#: Pay's own tables: what a Pay reader sees (not staging, not the run bookkeeping).
NOT_PAY = BOOKKEEPING | {table.name for table in STAGING.values()} | {"quarantine"}
#: The Pay tables each entity writes (through its link rows): unchanged when its fetch failed.
PAY_TABLES = {
    "projects": ("project", "client", "integration_link"),
    "workers": ("employee", "integration_link"),
    "timesheets": ("timesheet", "timesheet_line"),
    "orders": ("pay_order", "pay_order_line"),
}
#: Order statuses the pipeline imports by default (Confirmed, Completed).
CONFIRMED_STATUS_IDS = {2, 3}


def fast_assignar(**overrides: Any) -> AssignarResource:
    """The Assignar resource with a retry budget of seconds, so a fault that outlasts it fails a
    case quickly; a timeout of one second, so a slow answer is a timeout."""
    return AssignarResource(**{"timeout_seconds": 1.0, "retry_max_seconds": 2.5, **overrides})


@dataclass(frozen=True)
class Fault:
    """One row of the matrix: what the simulator does, and what the run must do about it."""

    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    #: recovers: the run succeeds and Pay equals the truth; fails: the run fails with `message`
    #: and Pay is unchanged; quarantines: one record lands in quarantine, the rest loads.
    expect: str = "recovers"
    message: str = ""


FAULTS = [
    Fault("429 storm (Retry-After)", "rate_limit", {"count": 2, "retry_after": 1}),
    Fault(
        "429 beyond the retry budget",
        "rate_limit",
        {"count": None, "retry_after": 1},
        "fails",
        "kept rate-limiting",
    ),
    Fault("5xx burst", "server_error", {"count": 2, "status": 502}),
    Fault("5xx outage", "server_error", {"count": None, "status": 503}, "fails", "did not answer"),
    Fault(
        "5xx outage after the first page",
        "server_error",
        {"count": None, "status": 500, "after_requests": 1},
        "fails",
        "did not answer",
    ),
    Fault("slower than the timeout", "slow", {"count": 1, "delay": 1.6}),
    Fault("connection dropped mid-body", "drop", {"count": 2, "fraction": 0.5}),
    Fault("page of malformed JSON", "malformed_json", {"count": 1}),
    Fault("malformed JSON every time", "malformed_json", {"count": None}, "fails", "invalid JSON"),
    Fault("record with wrong types", "malformed_record", {"count": 1}, "quarantines"),
    Fault("maintenance window", "maintenance", {"count": 2, "retry_after": 1}),
    Fault("maintenance outlasting", "maintenance", {"count": None}, "fails", "maintenance"),
    Fault("token revoked mid-run", "revoke_tokens", {"after_requests": 1}),
    Fault(
        "credentials rotated mid-run",
        "rotate_credentials",
        {"after_requests": 1},
        "fails",
        "rejected the client id",
    ),
    Fault("insert/edit/delete while paging", "churn", {"count": 2}),
]


@dataclass
class Verdict:
    """What Pay holds against Assignar's truth, for one connection and window."""

    lost: list[str] = field(default_factory=list)  # truth that Pay lacks or has wrong
    duplicates: list[str] = field(default_factory=list)  # a record twice, or live once deleted
    conservation: str = ""  # empty when every timesheet has exactly one outcome

    @property
    def clean(self) -> bool:
        return not self.lost and not self.duplicates and not self.conservation


def truth(simulator: SimulatorServer, entity: str) -> dict[int, dict[str, Any]]:
    """Assignar's records of `entity` that the pipeline imports for WINDOW."""
    records = simulator.simulator.records(RESOURCE[entity])
    low, high = WINDOW[0].isoformat(), WINDOW[1].isoformat()
    if entity == "timesheets":
        records = [r for r in records if low <= r["submitted_date"] < high]
    elif entity == "orders":
        records = [
            r
            for r in records
            if low <= r["start_date"][:10] < high and r["status_id"] in CONFIRMED_STATUS_IDS
        ]
    return {r["id"]: r for r in records}


def edit_upstream(simulator: SimulatorServer, entity: str) -> None:
    """Change `entity` in Assignar so that the faulted run has something to write: one record
    edited in a way Pay shows, one deleted, one added."""
    sim = simulator.simulator
    resource = RESOURCE[entity]
    records = sorted(truth(simulator, entity).values(), key=lambda r: r["id"])
    if entity == "timesheets":
        approved = [r for r in records if r["status"] in APPROVED_STATUSES]
        sim.update(resource, approved[0]["id"], {"total_time": "01:15"})
        sim.delete(resource, approved[1]["id"])
        copy = {k: v for k, v in approved[2].items() if k not in ("id", "modified_time")}
        sim.insert(resource, copy)
    elif entity == "orders":
        sim.update(resource, records[0]["id"], {"job_description": "Re-scoped by the office"})
        sim.delete(resource, records[1]["id"])
    elif entity == "projects":
        sim.update(resource, records[-1]["id"], {"name": records[-1]["name"] + " (renamed)"})
    else:
        sim.update(resource, records[-1]["id"], {"contact": "+61 400 000 000"})


def edit_loaded_timesheet(pipeline: Pipeline) -> None:
    """Edit the first timesheet that Pay holds live, so that the next load updates a Pay row."""
    with pipeline.engine.connect() as conn:
        loaded = (
            conn.execute(
                sa.select(t.timesheet.c.source_external_id)
                .where(t.timesheet.c.status != "void")
                .order_by(t.timesheet.c.source_external_id)
            )
            .scalars()
            .first()
        )
    pipeline.simulator.simulator.update("timesheets-expanded", loaded, {"total_time": "02:45"})


def pay_checksums(engine: Engine) -> dict[str, str]:
    """Checksums of what a Pay reader sees."""
    return {k: v for k, v in table_checksums(engine).items() if k not in NOT_PAY}


def verdict(pipeline: Pipeline, connection_id: int) -> Verdict:
    """Compare staging and Pay with the simulator for every entity, then check conservation."""
    result = Verdict()
    with pipeline.engine.connect() as conn:
        quarantined = {
            (q.entity, q.assignar_id)
            for q in conn.execute(
                sa.select(t.quarantine.c.entity, t.quarantine.c.assignar_id).where(
                    t.quarantine.c.connection_id == connection_id,
                    t.quarantine.c.released_at.is_(None),
                )
            )
        }
        held = {
            (h.entity, h.assignar_id)
            for h in conn.execute(
                sa.select(t.sync_hold).where(t.sync_hold.c.connection_id == connection_id)
            )
        }
        for entity in ENTITIES:
            _compare_staging(conn, pipeline.simulator, entity, connection_id, quarantined, result)
        _compare_timesheets(conn, pipeline.simulator, connection_id, held, quarantined, result)
        _compare_orders(conn, pipeline.simulator, connection_id, held, result)
    return result


def _quarantined(quarantined: set, entity: str, assignar_id: int) -> bool:
    return any(e == entity and str(assignar_id) in (q or "") for e, q in quarantined)


def _compare_staging(conn, simulator, entity, connection_id, quarantined, result) -> None:
    table = STAGING[entity]
    rows = conn.execute(sa.select(table).where(table.c.connection_id == connection_id)).all()
    if entity in ("timesheets", "orders"):
        rows = [r for r in rows if WINDOW[0] <= r.work_date < WINDOW[1]]
        if entity == "orders":
            rows = [r for r in rows if r.status_id in CONFIRMED_STATUS_IDS]
    staged = {r.assignar_id: r for r in rows if r.voided_at is None}
    voided = {r.assignar_id for r in rows if r.voided_at is not None}
    expected = truth(simulator, entity)
    modified = "modified_time"
    for assignar_id, record in expected.items():
        row = staged.get(assignar_id)
        if row is None:
            if assignar_id in voided:
                # Voided although it exists: Pay drops it (a quarantined record keeps its last
                # good version until it is fixed).
                result.lost.append(f"{entity} {assignar_id} voided, but it exists upstream")
            elif not _quarantined(quarantined, entity, assignar_id):
                result.lost.append(f"{entity} {assignar_id} not staged")
        elif _instant(row.modified_time) != _instant(record[modified]):
            result.lost.append(f"{entity} {assignar_id} staged at an old version")
    for assignar_id in staged.keys() - expected.keys():
        result.duplicates.append(f"{entity} {assignar_id} live in staging, gone upstream")


def _instant(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _minutes(value: Any) -> int | None:
    try:
        return minutes(value)
    except (AttributeError, TypeError, ValueError):
        return None


def _compare_timesheets(conn, simulator, connection_id, held, quarantined, result) -> None:
    """Every timesheet of the window has one outcome: in Pay with Assignar's minutes, held,
    quarantined, or not approved (absent or void in Pay); nothing else is live in Pay."""
    expected = truth(simulator, "timesheets")
    pay = t.timesheet
    rows = conn.execute(sa.select(pay).where(pay.c.source_connection_id == connection_id)).all()
    by_id: dict[int, list] = {}
    for row in rows:
        by_id.setdefault(row.source_external_id, []).append(row)
    for assignar_id, copies in by_id.items():
        if len(copies) > 1:
            result.duplicates.append(f"timesheet {assignar_id} in Pay {len(copies)} times")
    outcomes = {"loaded": 0, "held": 0, "quarantined": 0, "not approved": 0}
    total = 0  # Assignar's minutes in the window: each lands in exactly one outcome
    for assignar_id, record in expected.items():
        live = [r for r in by_id.get(assignar_id, []) if r.status != "void"]
        if _quarantined(quarantined, "timesheets", assignar_id):
            continue  # its minutes are unreadable or untrusted: counted in quarantine
        want = _minutes(record["total_time"])
        if want is None:
            result.lost.append(f"timesheet {assignar_id}: bad total_time, not in quarantine")
            continue
        total += want
        if ("timesheet", assignar_id) in held:
            outcome = "held"
        elif record["status"] not in APPROVED_STATUSES:
            outcome = "not approved"
            if live:
                result.duplicates.append(f"timesheet {assignar_id} live in Pay, not approved")
        elif not live:
            result.lost.append(f"timesheet {assignar_id} approved, not in Pay")
            continue
        elif live[0].payable_minutes != want:
            result.lost.append(
                f"timesheet {assignar_id}: Pay {live[0].payable_minutes} min, Assignar {want}"
            )
            continue
        else:
            outcome = "loaded"
        outcomes[outcome] += want
    live_minutes = 0
    for assignar_id, copies in by_id.items():
        live = [c for c in copies if c.status != "void" and WINDOW[0] <= c.work_date < WINDOW[1]]
        live_minutes += sum(c.payable_minutes for c in live)
        if live and assignar_id not in expected:
            result.duplicates.append(f"timesheet {assignar_id} live in Pay, deleted upstream")
    if not result.lost and not result.duplicates and live_minutes != outcomes["loaded"]:
        # Conservation in minutes: Pay holds exactly the minutes of what was loaded.
        result.conservation = (
            f"Pay has {live_minutes} live minutes in the window, Assignar's loaded timesheets "
            f"{outcomes['loaded']} (of {total}: {outcomes})"
        )


def _compare_orders(conn, simulator, connection_id, held, result) -> None:
    expected = truth(simulator, "orders")
    pay = t.pay_order
    rows = conn.execute(sa.select(pay).where(pay.c.source_connection_id == connection_id)).all()
    by_id: dict[int, list] = {}
    for row in rows:
        by_id.setdefault(row.source_external_id, []).append(row)
    for assignar_id, copies in by_id.items():
        if len(copies) > 1:
            result.duplicates.append(f"order {assignar_id} in Pay {len(copies)} times")
        live = [c for c in copies if not c.voided]
        in_window = [c for c in copies if WINDOW[0] <= c.start_date < WINDOW[1]]
        if live and in_window and assignar_id not in expected:
            result.duplicates.append(f"order {assignar_id} live in Pay, gone upstream")
    for assignar_id, record in expected.items():
        live = [c for c in by_id.get(assignar_id, []) if not c.voided]
        if ("order", assignar_id) in held:
            continue
        if not live:
            result.lost.append(f"order {assignar_id} confirmed, not in Pay")
        elif live[0].description != record["job_description"]:
            result.lost.append(f"order {assignar_id} in Pay at an old version")


def run_errors(engine: Engine, run_id: str) -> dict[str, str]:
    """Entity → error of this run's sync-log rows that failed."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.sync_log.c.entity, t.sync_log.c.error).where(
                t.sync_log.c.run_id == run_id, t.sync_log.c.error.is_not(None)
            )
        ).all()
    return {entity: error for entity, error in rows}


def run_logged(engine: Engine, run_id: str) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(sa.select(t.sync_log.c.entity).where(t.sync_log.c.run_id == run_id))
            .scalars()
            .all()
        )


def quarantined_in(engine: Engine, run_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(t.sync_log.c.quarantined), 0)).where(
                t.sync_log.c.run_id == run_id
            )
        ).scalar()


def connection_state(engine: Engine, connection_id: int) -> str:
    with engine.connect() as conn:
        return sync_status(conn, connection_id, datetime.now(UTC)).status


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return " ".join(
        str(e.event_specific_data)
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    )


@dataclass
class CaseRow:
    """One line of the matrix's table."""

    fault: str
    entity: str
    database: str
    outcome: str = ""
    rows_lost: int = 0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.fault:<34} {self.entity:<11} {self.database:<10} {self.outcome:<44} "
            f"{self.rows_lost:>4} {self.duplicates:>4}"
        )


HEADER = f"{'fault':<34} {'entity':<11} {'database':<10} {'outcome':<44} {'lost':>4} {'dup':>4}"


def _id_of(problem: str) -> int:
    """The Assignar id a verdict line is about (its second word)."""
    return int(problem.split()[1].rstrip(":"))


def run_case(pipeline: Pipeline, fault: Fault, entity: str, setenv) -> CaseRow:
    """Edit upstream, run with the fault on `entity`'s path, then run clean; judge both runs.

    `setenv(name, value)` stores a rotated secret where the connection reads it (what an operator
    does after a rotation) before the clean run.
    """
    row = CaseRow(fault.name, entity, pipeline.engine.dialect.name)
    sim = pipeline.simulator.simulator
    demo = pipeline.connection_id("demo")
    before = pay_checksums(pipeline.engine)
    edit_upstream(pipeline.simulator, entity)
    params = dict(fault.params)
    count = params.pop("count", "default")
    existed = set(truth(pipeline.simulator, entity))
    added = sim.add_fault(fault.kind, count, PATH[entity], **params)
    first = pipeline.materialize(ASSETS[entity], window=WINDOW, assignar=fast_assignar())
    sim.clear_faults()
    errors = run_errors(pipeline.engine, first.run_id)
    after_fault = verdict(pipeline, demo)
    if fault.expect == "fails":
        failed = {entity for entity in errors if not entity.startswith("pay_")}
        message = next((m for m in errors.values() if fault.message in m), "")
        row.outcome = f"failed: {message[:36]}…" if message else "did not fail"
        if first.success or not message:
            row.problems.append(f"expected a failure saying {fault.message!r}, got {errors}")
        if entity not in failed:
            row.problems.append(f"{entity} did not fail: {errors}")
        if "demo" not in failure_text(first):
            row.problems.append("the run's failure does not name the connection")
        now = pay_checksums(pipeline.engine)
        for name in {table for e in failed for table in PAY_TABLES[e]}:
            if now[name] != before[name]:
                row.problems.append(f"Pay's {name} changed although its fetch failed")
        if connection_state(pipeline.engine, demo) != "Error":
            row.problems.append("the connection is not shown as Error")
    else:
        if not first.success or errors:
            row.problems.append(f"the run failed: {errors or failure_text(first)[:300]}")
        row.outcome = "recovered"
        if fault.kind == "churn":
            # Read before they happened: the delete and the edit behind the reader wait for the
            # next run; nothing that existed throughout may be missing, nothing may be doubled.
            # A record inserted after the reader's last page is for the next run too.
            after_fault.lost = [
                x for x in after_fault.lost if "old version" not in x and _id_of(x) in existed
            ]
            after_fault.duplicates = [x for x in after_fault.duplicates if "upstream" not in x]
            after_fault.conservation = ""
            row.outcome = "recovered (2 changes caught by the next run)"
        if fault.expect == "quarantines":
            # An unreadable record could be any of the window's, so voiding waits for the next
            # run: the record deleted upstream stays live one run longer (never the reverse).
            after_fault.duplicates = [x for x in after_fault.duplicates if "upstream" not in x]
            n = quarantined_in(pipeline.engine, first.run_id)
            row.outcome = f"quarantined {n}, the rest loaded"
            if n < 1:
                row.problems.append("nothing was quarantined")
        row.rows_lost += len(after_fault.lost)
        row.duplicates += len(after_fault.duplicates)
        row.problems += after_fault.lost + after_fault.duplicates
        if after_fault.conservation:
            row.problems.append(after_fault.conservation)
    if fault.kind == "rotate_credentials":
        setenv("DEMO_SECRET", added["client_secret"])
    clean = pipeline.materialize(ASSETS[entity], window=WINDOW, assignar=fast_assignar())
    final = verdict(pipeline, demo)
    row.rows_lost += len(final.lost)
    row.duplicates += len(final.duplicates)
    row.problems += (
        final.lost + final.duplicates + ([final.conservation] if final.conservation else [])
    )
    if not clean.success:
        row.problems.append(f"the clean run failed: {run_errors(pipeline.engine, clean.run_id)}")
    if not {entity, f"pay_{entity}"} <= run_logged(pipeline.engine, clean.run_id):
        row.problems.append("the clean run left no sync-log row for the entity")
    if entity not in run_logged(pipeline.engine, first.run_id):
        row.problems.append("the faulted run left no sync-log row for the entity")
    if connection_state(pipeline.engine, demo) == "Error":
        row.problems.append("the connection is still in Error after a clean run")
    return row
