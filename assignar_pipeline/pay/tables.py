"""The Pay tables the integration reads and writes, and the integration's own tables.

One SQLAlchemy Core `MetaData` for both: Alembic migrations are written against it, and the same
definitions run on SQLite (the default) and PostgreSQL. Money and rates are `ScaledDecimal`, time
is integer minutes, instants are UTC. Pay tables hold no bookkeeping columns ("last seen"), so a
re-run that changes nothing leaves them byte-for-byte equal; bookkeeping is in sync_log/sync_state.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)

from assignar_pipeline.entities import ENTITIES
from assignar_pipeline.pay.types import MONEY, QUANTITY, RATE, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _id() -> Column:
    return Column("id", Integer, primary_key=True, autoincrement=True)


def _team() -> Column:
    return Column("team_id", Integer, ForeignKey("team.id"), nullable=False)


def _unique_when_present(name: str, column: str) -> Index:
    """Unique per team where the value is set (a partial index on both engines)."""
    present = text(f"{column} IS NOT NULL")
    return Index(
        name, "team_id", column, unique=True, sqlite_where=present, postgresql_where=present
    )


# -- Pay: tenant and authority -------------------------------------------------------------------

team = Table(
    "team",
    metadata,
    _id(),
    Column("name", String(200), nullable=False),
    Column("account_type", String(10), nullable=False),
    Column("country", String(2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("week_starts_on", Integer, nullable=False, server_default="1"),  # ISO weekday
    CheckConstraint("account_type IN ('team', 'personal')", name="account_type"),
)

team_feature = Table(
    "team_feature",
    metadata,
    _team(),
    Column("feature", String(40), nullable=False),  # integrations | job_costing | ...
    Column("enabled", Boolean, nullable=False),
    PrimaryKeyConstraint("team_id", "feature"),
)

pay_user = Table(
    "pay_user",
    metadata,
    _id(),
    Column("email", String(320), nullable=False, unique=True),  # stored lower-case
    Column("full_name", String(200), nullable=False),
)

team_role = Table(
    "team_role",
    metadata,
    _id(),
    Column("team_id", Integer, ForeignKey("team.id")),  # NULL: a built-in role
    Column("key", String(40), nullable=False),
    Column("name", String(100), nullable=False),
    UniqueConstraint("team_id", "key"),
)

role_permission = Table(
    "role_permission",
    metadata,
    Column("role_id", Integer, ForeignKey("team_role.id"), nullable=False),
    Column("permission", String(60), nullable=False),  # integrations.manage, payroll.manage, ...
    PrimaryKeyConstraint("role_id", "permission"),
)

team_member = Table(
    "team_member",
    metadata,
    _team(),
    Column("user_id", Integer, ForeignKey("pay_user.id"), nullable=False),
    Column("role_id", Integer, ForeignKey("team_role.id"), nullable=False),
    Column("status", String(10), nullable=False, server_default="active"),
    PrimaryKeyConstraint("team_id", "user_id"),
)

# -- Pay: master data ----------------------------------------------------------------------------

client = Table(
    "client",
    metadata,
    _id(),
    _team(),
    Column("code", String(100)),
    Column("name", String(300), nullable=False),
    _unique_when_present("uq_client_team_code", "code"),
)

project = Table(
    "project",
    metadata,
    _id(),
    _team(),
    Column("client_id", Integer, ForeignKey("client.id")),
    Column("parent_id", Integer, ForeignKey("project.id")),
    Column("code", String(100)),
    Column("name", String(300), nullable=False),
    Column("status", String(10), nullable=False),
    Column("timezone", String(64)),
    Column("origin", String(12), nullable=False),  # manual | assignar | resolution
    CheckConstraint("status IN ('active', 'completed', 'archived')", name="status"),
    _unique_when_present("uq_project_team_code", "code"),
)

employee = Table(
    "employee",
    metadata,
    _id(),
    _team(),
    Column("user_id", Integer, ForeignKey("pay_user.id")),
    Column("employee_number", String(100)),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("email", String(320)),
    Column("dob", Date),
    Column("status", String(12), nullable=False),
    Column("origin", String(12), nullable=False),
    CheckConstraint("status IN ('active', 'inactive', 'terminated')", name="status"),
    _unique_when_present("uq_employee_team_number", "employee_number"),
    Index("ix_employee_team_email", "team_id", "email"),
)

cost_code = Table(
    "cost_code",
    metadata,
    _id(),
    _team(),
    Column("code", String(100), nullable=False),
    Column("name", String(300), nullable=False),
    UniqueConstraint("team_id", "code"),
)

pay_code = Table(
    "pay_code",
    metadata,
    _id(),
    _team(),
    Column("code", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(12), nullable=False),  # ordinary | overtime | penalty | allowance | leave
    Column("multiplier", RATE),
    UniqueConstraint("team_id", "code"),
)

pay_rate = Table(
    "pay_rate",
    metadata,
    _id(),
    _team(),
    Column("pay_code_id", Integer, ForeignKey("pay_code.id"), nullable=False),
    Column("employee_id", Integer, ForeignKey("employee.id")),
    Column("project_id", Integer, ForeignKey("project.id")),
    Column("scope_key", String(100), nullable=False),  # canonical "e=12;p=" for uniqueness
    Column("rate", RATE, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("effective_from", Date, nullable=False),
    Column("effective_to", Date),  # exclusive; append-only: a new rate closes the previous one
    Column("source", String(24), nullable=False),  # manual | seed | *_resolution
    Column("source_ref", String(100)),
    UniqueConstraint("team_id", "pay_code_id", "scope_key", "effective_from"),
    CheckConstraint(
        "effective_to IS NULL OR effective_to > effective_from", name="effective_range"
    ),
    # The set-based load looks a rate up per scope and work date (load/timesheet_plan.py).
    Index(
        "ix_pay_rate_lookup",
        "team_id",
        "pay_code_id",
        "employee_id",
        "project_id",
        "effective_from",
    ),
)

# -- Pay: transactions ---------------------------------------------------------------------------

timesheet = Table(
    "timesheet",
    metadata,
    _id(),
    _team(),
    Column("employee_id", Integer, ForeignKey("employee.id"), nullable=False),
    Column("project_id", Integer, ForeignKey("project.id")),
    Column("work_date", Date, nullable=False),  # local date of the shift's start
    Column("start_at", UtcDateTime, nullable=False),
    Column("end_at", UtcDateTime, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("elapsed_minutes", Integer, nullable=False),  # real time between start and end
    Column("payable_minutes", Integer, nullable=False),  # Assignar total_time
    Column("status", String(10), nullable=False),  # imported | approved | processed | paid | void
    Column("void_reason", String(200)),
    Column("locked_at", UtcDateTime),
    Column("source_connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("source_external_id", BigInteger, nullable=False),
    Column("source_status", String(60), nullable=False),
    Column("source_modified_at", UtcDateTime, nullable=False),
    Column("source_hash", String(64), nullable=False),
    Column("source_version", Integer, nullable=False),
    # What the lines were priced with (rates, their sources): a change re-prices unlocked rows.
    Column("price_hash", String(64)),
    # The double-pay guard: one Pay timesheet per Assignar timesheet per connection.
    UniqueConstraint("source_connection_id", "source_external_id"),
    CheckConstraint("end_at > start_at", name="end_after_start"),
    CheckConstraint("payable_minutes >= 0", name="payable_minutes"),
    Index("ix_timesheet_team_employee_date", "team_id", "employee_id", "work_date"),
)

timesheet_line = Table(
    "timesheet_line",
    metadata,
    Column("timesheet_id", Integer, ForeignKey("timesheet.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("cost_code", String(100)),  # the Assignar activity's external id
    Column("minutes", Integer, nullable=False),
    Column("source_item_ref", BigInteger),  # the Assignar activity entry
    # Pricing (NULL rate: Pay has no rate for this employee yet; Pay's own rules price it).
    Column("pay_code_id", Integer, ForeignKey("pay_code.id")),
    Column("rate", RATE),
    Column("amount", MONEY),  # minutes × rate / 60, rounded half-up to cents once per line
    Column("rate_source", String(20)),  # employee_project | employee | project | team | resolution
    Column("pay_rate_id", Integer, ForeignKey("pay_rate.id")),
    Column("resolution_id", Integer, ForeignKey("sync_resolution.id")),
    PrimaryKeyConstraint("timesheet_id", "line_no"),
)

pay_order = Table(
    "pay_order",
    metadata,
    _id(),
    _team(),
    Column("project_id", Integer, ForeignKey("project.id")),
    Column("order_number", String(100)),
    Column("po_number", String(100)),
    Column("status", String(40), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("description", Text),
    Column("voided", Boolean, nullable=False),
    Column("source_connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("source_external_id", BigInteger, nullable=False),
    Column("source_hash", String(64), nullable=False),
    UniqueConstraint("source_connection_id", "source_external_id"),
)

pay_order_line = Table(
    "pay_order_line",
    metadata,
    Column("order_id", Integer, ForeignKey("pay_order.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("cost_code", String(100)),
    Column("description", String(300)),
    Column("quantity", QUANTITY, nullable=False),
    Column("unit", String(20)),
    PrimaryKeyConstraint("order_id", "line_no"),
)

# -- Integration: connections and links ----------------------------------------------------------

connection = Table(
    "connection",
    metadata,
    _id(),
    Column("key", String(100), nullable=False, unique=True),  # what run config names
    _team(),
    Column("region", String(2), nullable=False),
    Column("client_id", String(200), nullable=False),
    # The NAME of the environment variable (or secret-store key) holding the secret, never it.
    Column("client_secret_ref", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("import_timesheets", Boolean, nullable=False),
    Column("import_orders", Boolean, nullable=False),
    Column("status", String(12), nullable=False),  # active | disconnected
    Column("connected_by_user_id", Integer, ForeignKey("pay_user.id"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("disconnected_at", UtcDateTime),
    # Sync operations: when the hourly schedule syncs this connection, and whom it tells.
    Column("sync_frequency", String(7), nullable=False, server_default="hourly"),
    Column("sync_time", String(5), nullable=False, server_default="06:00"),  # local HH:MM
    Column("sync_weekday", Integer, nullable=False, server_default="1"),  # ISO: 1 = Monday
    Column("auto_sync_timesheets", Boolean, nullable=False, server_default=true()),
    Column("auto_sync_orders", Boolean, nullable=False, server_default=true()),
    Column("lookback_days", Integer, nullable=False, server_default="3"),
    Column("notify_emails", Text),  # comma-separated recipients
    Column("webhook_url", String(500)),  # or "env:NAME" when the URL itself is a secret
    CheckConstraint("status IN ('active', 'disconnected')", name="status"),
    CheckConstraint("region IN ('na', 'au')", name="region"),
    CheckConstraint("sync_frequency IN ('hourly', 'daily', 'weekly')", name="sync_frequency"),
    CheckConstraint("sync_weekday BETWEEN 1 AND 7", name="sync_weekday"),
    CheckConstraint("lookback_days BETWEEN 0 AND 31", name="lookback_days"),
)

integration_link = Table(
    "integration_link",
    metadata,
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("entity", String(20), nullable=False),  # client | project | worker
    Column("external_id", BigInteger, nullable=False),
    Column("pay_id", Integer),  # NULL: deliberately ignored
    Column("match_rule", String(24), nullable=False),
    Column("resolution_id", Integer, ForeignKey("sync_resolution.id")),  # the decision behind it
    PrimaryKeyConstraint("connection_id", "entity", "external_id"),
    Index("ix_integration_link_pay", "connection_id", "entity", "pay_id"),
)

# -- Integration: reconciliation (evidence, conflicts, resolutions, adjustments) ------------------

#: Conflict kinds and the choices that resolve each (see assignar_pipeline/reconcile/).
CONFLICT_KINDS = ("duplicate_project", "worker_mismatch", "rate_difference", "locked_changed")
DECISIONS = (
    "merge",
    "create_new",
    "map",
    "create_employee",
    "ignore",
    "use_assignar_rate",
    "keep_pay_rate",
    "set_rate",
    "accept_adjustment",
    "reject_adjustment",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


assignar_rate = Table(
    "assignar_rate",
    metadata,
    # What Assignar's pay-rate groups say per task (role) and pay code: evidence, never adopted.
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("task_assignar_id", BigInteger, nullable=False),
    Column("pay_code", String(40), nullable=False),
    Column("rate", RATE, nullable=False),
    Column("task_name", String(200)),
    Column("group_assignar_id", BigInteger, nullable=False),
    Column("group_name", String(200)),
    PrimaryKeyConstraint("connection_id", "task_assignar_id", "pay_code"),
)

reconcile_setting = Table(
    "reconcile_setting",
    metadata,
    # Per-connection thresholds; a connection without a row uses the defaults in reconcile/.
    Column("connection_id", Integer, ForeignKey("connection.id"), primary_key=True),
    Column("project_name_threshold", RATE, nullable=False),  # similarity 0..1 for candidates
    Column("worker_name_threshold", RATE, nullable=False),
    Column("rate_tolerance", RATE, nullable=False),  # |Assignar − Pay| above it is a conflict
)

sync_conflict = Table(
    "sync_conflict",
    metadata,
    # id = UUIDv5 of (connection, kind, fingerprint): the same disagreement is the same row.
    Column("id", String(36), primary_key=True),
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("fingerprint", String(300), nullable=False),
    Column("subject_entity", String(20), nullable=False),  # project | worker | timesheet
    Column("subject_external_id", BigInteger, nullable=False),  # its Assignar id
    Column("summary", String(400), nullable=False),
    Column("details", JSON, nullable=False),  # both sides, with their sources
    Column("candidates", JSON, nullable=False),  # [{pay_id, score, rule, ...}], best first
    Column("status", String(10), nullable=False),  # open | resolved | superseded
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("resolution_id", Integer),  # the active sync_resolution (no FK: they refer both ways)
    UniqueConstraint("connection_id", "kind", "fingerprint"),
    CheckConstraint(_in("kind", CONFLICT_KINDS), name="kind"),
    CheckConstraint("status IN ('open', 'resolved', 'superseded')", name="status"),
    Index("ix_sync_conflict_status", "connection_id", "status", "kind"),
)

sync_conflict_seen = Table(
    "sync_conflict_seen",
    metadata,
    # Bookkeeping (like sync_log): rewritten whenever a sync meets the conflict again.
    Column("conflict_id", String(36), ForeignKey("sync_conflict.id"), primary_key=True),
    Column("last_seen_at", UtcDateTime, nullable=False),
)

sync_resolution = Table(
    "sync_resolution",
    metadata,
    _id(),  # append-only: a resolution is never edited or deleted
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("conflict_id", String(36), ForeignKey("sync_conflict.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("decision", String(20), nullable=False),
    Column("target_pay_id", Integer),  # the Pay project/employee merged into, mapped or created
    Column("rate", RATE),  # the rate chosen (use_assignar_rate, set_rate)
    Column("apply_scope", String(14)),  # occurrence | going_forward (rates)
    Column("effective_from", Date),  # going_forward: the new Pay rate's first day
    Column("params", JSON, nullable=False),  # everything else the choice was given
    Column("decided_by_user_id", Integer, ForeignKey("pay_user.id"), nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("note", Text),
    CheckConstraint(_in("decision", DECISIONS), name="decision"),
    CheckConstraint(
        "apply_scope IS NULL OR apply_scope IN ('occurrence', 'going_forward')", name="scope"
    ),
    UniqueConstraint("conflict_id"),  # one resolution per conflict
)

sync_hold_conflict = Table(
    "sync_hold_conflict",
    metadata,
    # Which conflicts hold a held record (a timesheet can wait on a worker and a project).
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("entity", String(20), nullable=False),
    Column("assignar_id", BigInteger, nullable=False),
    Column("conflict_id", String(36), ForeignKey("sync_conflict.id"), nullable=False),
    PrimaryKeyConstraint("connection_id", "entity", "assignar_id", "conflict_id"),
    Index("ix_sync_hold_conflict_conflict", "conflict_id"),
)

timesheet_adjustment = Table(
    "timesheet_adjustment",
    metadata,
    # A decided upstream change to a timesheet Pay had already processed or paid; the locked
    # timesheet itself is never edited. Pay's minutes = payable_minutes + approved deltas.
    _id(),
    Column("timesheet_id", Integer, ForeignKey("timesheet.id"), nullable=False),
    Column("conflict_id", String(36), ForeignKey("sync_conflict.id"), nullable=False),
    Column("delta_minutes", Integer, nullable=False),
    Column("delta_amount", MONEY),
    Column("reason", String(24), nullable=False),  # edited_after_lock | deleted_after_lock | ...
    Column("status", String(10), nullable=False),  # approved | rejected
    Column("decided_by_user_id", Integer, ForeignKey("pay_user.id"), nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    UniqueConstraint("conflict_id"),
    CheckConstraint("status IN ('approved', 'rejected')", name="status"),
    Index("ix_timesheet_adjustment_timesheet", "timesheet_id"),
)

# -- Integration: staging (typed copies of what Assignar said, keyed by connection + id) ----------


def _staging(name: str, *columns: Column | Index) -> Table:
    """Columns every staged record has: its key, upstream version, and when we saw it."""
    return Table(
        name,
        metadata,
        Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
        Column("assignar_id", BigInteger, nullable=False),
        *columns,
        Column("modified_time", UtcDateTime, nullable=False),  # upstream version: newer wins
        Column("fetched_at", UtcDateTime, nullable=False),  # start of the fetch that saw it
        Column("content_hash", String(64), nullable=False),
        Column("voided_at", UtcDateTime),  # vanished upstream (kept, never deleted)
        PrimaryKeyConstraint("connection_id", "assignar_id"),
    )


staging_project = _staging(
    "staging_project",
    Column("name", String(300), nullable=False),
    Column("code", String(100)),
    Column("client_assignar_id", BigInteger),
    Column("client_name", String(300)),
    Column("client_code", String(100)),
    Column("parent_assignar_id", BigInteger),
    Column("active", Boolean, nullable=False),
)

staging_worker = _staging(
    "staging_worker",
    Column("employee_id", String(100)),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("email", String(320)),
    Column("dob", Date),
    Column("employment_type", Integer),
    Column("active", Boolean, nullable=False),
)

staging_timesheet = _staging(
    "staging_timesheet",
    Column("work_date", Date, nullable=False),
    Column("user_assignar_id", BigInteger, nullable=False),
    Column("project_assignar_id", BigInteger),
    Column("task_assignar_id", BigInteger),
    Column("order_assignar_id", BigInteger),
    Column("start_at", UtcDateTime, nullable=False),
    Column("end_at", UtcDateTime, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("total_minutes", Integer, nullable=False),
    Column("status", String(60), nullable=False),
    Column("processed", Boolean, nullable=False),
    Column("lines", JSON, nullable=False),  # [{"ref", "cost_code", "minutes"}]
    Index("ix_staging_timesheet_window", "connection_id", "work_date"),
)

staging_order = _staging(
    "staging_order",
    Column("work_date", Date, nullable=False),  # the order's start date
    Column("end_date", Date),
    Column("job_number", String(100)),
    Column("po_number", String(100)),
    Column("project_assignar_id", BigInteger),
    Column("client_assignar_id", BigInteger),
    Column("status_id", Integer, nullable=False),
    Column("description", Text),
    Column("active", Boolean, nullable=False),
    Column("lines", JSON, nullable=False),  # [{"cost_code", "description", "quantity", "unit"}]
    Index("ix_staging_order_window", "connection_id", "work_date"),
)

#: Each entity's staging table, by entity name (declared in `entities.py`).
STAGING = {e.name: metadata.tables[e.staging_table] for e in ENTITIES}

# -- Integration: what could not be loaded, and what happened ------------------------------------

quarantine = Table(
    "quarantine",
    metadata,
    _id(),
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("entity", String(20), nullable=False),
    Column("assignar_id", String(40)),  # as received: it may be the malformed field
    Column("work_date", Date),  # the partition it was fetched for (NULL for snapshots)
    Column("record", JSON, nullable=False),  # the raw record, to fix and replay
    Column("reason", Text, nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("quarantined_at", UtcDateTime, nullable=False),
    Column("released_at", UtcDateTime),  # a later fetch of the same record validated
    Index("ix_quarantine_open", "connection_id", "entity", "work_date"),
)

sync_hold = Table(
    "sync_hold",
    metadata,
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("entity", String(20), nullable=False),
    Column("assignar_id", BigInteger, nullable=False),
    Column("work_date", Date),
    Column("reason", String(300), nullable=False),
    Column("held_since", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("connection_id", "entity", "assignar_id"),
)

sync_log = Table(
    "sync_log",
    metadata,
    _id(),
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("entity", String(20), nullable=False),
    Column("window_start", Date),
    Column("window_end", Date),  # exclusive
    Column("fetched", Integer, nullable=False, server_default="0"),
    Column("inserted", Integer, nullable=False, server_default="0"),
    Column("updated", Integer, nullable=False, server_default="0"),
    Column("unchanged", Integer, nullable=False, server_default="0"),
    Column("voided", Integer, nullable=False, server_default="0"),
    Column("quarantined", Integer, nullable=False, server_default="0"),
    Column("held", Integer, nullable=False, server_default="0"),
    Column("api_requests", Integer, nullable=False, server_default="0"),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("error", Text),
    Index("ix_sync_log_connection", "connection_id", "started_at"),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("entity", String(20), nullable=False),
    Column("window_start", Date, nullable=False),  # 1970-01-01 for snapshot entities
    Column("fetch_started_at", UtcDateTime, nullable=False),
    Column("run_id", String(64), nullable=False),
    PrimaryKeyConstraint("connection_id", "entity", "window_start"),
)

# -- Integration: sync operations (change detection, schedules, rate limit, notifications) ---------

sync_cursor = Table(
    "sync_cursor",
    metadata,
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("entity", String(20), nullable=False),
    # Upstream modified_time from which the next delta asks (inclusive). Only ever a value
    # Assignar stamped, never our clock; moved in the transaction that wrote what it covers.
    Column("modified_since", UtcDateTime, nullable=False),
    Column("delta_at", UtcDateTime),  # our clock: the last delta check that committed
    Column("lookback_at", UtcDateTime),  # our clock: the last lookback refresh
    Column("memo", JSON),  # what the entity's sync caches, e.g. orders' confirmed status ids
    Column("run_id", String(64), nullable=False),
    PrimaryKeyConstraint("connection_id", "entity"),
)

sync_setting = Table(
    "sync_setting",
    metadata,
    Column("name", String(60), primary_key=True),  # deployment-wide, e.g. batch_size
    Column("value", String(200), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

sync_run = Table(
    "sync_run",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),  # sync | initial_import | bulk_import | manual
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("status", String(10)),  # success | failure | canceled (set by run-status sensors)
    Column("error", Text),
)

rate_limit_bucket = Table(
    "rate_limit_bucket",
    metadata,
    Column("account", String(250), primary_key=True),  # region:client_id
    Column("tokens", Float, nullable=False),  # may go negative: reservations queued ahead
    Column("updated_at", Float, nullable=False),  # epoch seconds of the last refill
)

bulk_import = Table(
    "bulk_import",
    metadata,
    _id(),
    Column("spec", JSON, nullable=False),  # connections, dates, filters, entities
    Column("not_before", UtcDateTime, nullable=False),  # off-hours: launched at or after
    Column("created_at", UtcDateTime, nullable=False),
    Column("status", String(10), nullable=False),  # pending | launched | failed
    Column("backfill_id", String(64)),
    Column("launched_at", UtcDateTime),
    Column("error", Text),
    Index("ix_bulk_import_pending", "status", "not_before"),
)

notification = Table(
    "notification",
    metadata,
    _id(),
    Column("connection_id", Integer, ForeignKey("connection.id"), nullable=False),
    Column("event_key", String(120), nullable=False),  # run or backfill id + event
    Column("channel", String(10), nullable=False),  # email | webhook
    Column("sent_at", UtcDateTime, nullable=False),
    Column("error", Text),  # why it could not be delivered (never a secret)
    UniqueConstraint("connection_id", "event_key", "channel"),
)

alert_state = Table(
    "alert_state",
    metadata,
    # A check ("pay_timesheets:minutes_parity") or a job ("job:sync_assignar")...
    Column("source", String(200), nullable=False),
    # ...and what it concerns: a connection key, or "" for the deployment as a whole.
    Column("subject", String(100), nullable=False),
    Column("state", String(10), nullable=False),  # failing | passing
    Column("since", UtcDateTime, nullable=False),  # when it entered this state
    # Order of the evaluation that set it (check execution id, run end in ms): newer wins, so
    # an evaluation seen twice, or late, never changes the state back.
    Column("seen", BigInteger, nullable=False),
    Column("detail", Text),  # the first reasons of the failure, for the recovery notice
    Column("error", Text),  # why the last notice could not be delivered (never a secret)
    PrimaryKeyConstraint("source", "subject"),
)
