"""Bulk imports as Dagster backfills: full history, the last 3 months, or chosen dates, projects
and workers, for one or several connections.

A bulk import is a partition backfill of the extract and Pay assets over the chosen dates, with the
connections and filters as run config (`resources.scope.config`), launched through Dagster's
GraphQL mutation `launchPartitionBackfill`. Dagster splits it into ranged runs of up to a year
(the assets' `BackfillPolicy`), shows progress on the backfill's page, and its runs carry the tag
`assignar/operation=bulk_import`, which the notification sensor reports on when it ends. An import
asked for a later time (`not_before`, e.g. off-hours) waits in `bulk_import` until the launcher
sensor sends it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assignar_pipeline.entities import DATED, asset_names
from assignar_pipeline.pay.tables import bulk_import
from assignar_pipeline.runs import (
    BULK_IMPORT,
    CONNECTIONS_TAG,
    OPERATION_TAG,
    connections_tag,
    scope_config,
)
from assignar_pipeline.windows import format_window

MUTATION = """
mutation LaunchBulkImport($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on PartitionSetNotFoundError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on UnauthorizedError { message }
  }
}
"""


class BulkImportError(ValueError):
    """A bulk import cannot be launched; the message says what to fix."""


class DagsterUnreachable(BulkImportError):
    """The Dagster webserver did not answer: worth trying again later."""


@dataclass(frozen=True)
class BulkImport:
    """What to import: dates (inclusive), connections, filters, entities."""

    start: date
    end: date  # inclusive, like the Launchpad's partition range
    connections: tuple[str, ...] = ()  # empty: every active connection
    projects: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()
    timesheets: bool = True
    orders: bool = False
    title: str | None = None
    extra_tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise BulkImportError(f"The range ends ({self.end}) before it starts ({self.start}).")
        if not (self.timesheets or self.orders):
            raise BulkImportError("Nothing to import: choose timesheets, orders or both.")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def describe(self) -> str:
        who = ", ".join(self.connections) or "all active connections"
        what = "+".join(e for e in DATED if getattr(self, e))
        filters = "".join(
            f"; {name} {', '.join(values)}"
            for name, values in (("projects", self.projects), ("workers", self.workers))
            if values
        )
        dates = format_window(self.start, self.end + timedelta(days=1))
        return f"{what} {dates} ({self.days} days) for {who}{filters}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BulkImport:
        values = dict(data)
        values["start"], values["end"] = (
            date.fromisoformat(data["start"]),
            date.fromisoformat(data["end"]),
        )
        for name in ("connections", "projects", "workers"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


def one_range(given: dict[str, bool]) -> None:
    """Refuse range options that contradict each other (option → whether it was given).

    Click lets the last of two presets win silently, and a preset ignored --from/--to: an
    import of years when months were meant."""
    chosen = [option for option, on in given.items() if on]
    presets = [o for o in chosen if o not in ("--from", "--to")]
    if len(presets) > 1 or (presets and len(chosen) > len(presets)):
        raise BulkImportError(
            f"Choose one range: {' and '.join(chosen)} contradict each other. Give "
            "--full-history, --last-3-months, or --from DATE [--to DATE]."
        )


def local_today(timezones: Iterable[str], now: datetime) -> date:
    """The latest local date among the connections' zones (their work dates are local dates,
    as the initial import's "today" is); with no connection, the date where this runs."""
    dates = [now.astimezone(ZoneInfo(zone)).date() for zone in timezones]
    return max(dates) if dates else now.astimezone().date()


def date_range(
    preset: str | None,
    today: date,
    history_start: date,
    *,
    start: date | None = None,
    end: date | None = None,
) -> tuple[date, date]:
    """The inclusive dates of a preset ('full', '3m', '4w') or of explicit --from/--to."""
    if preset == "full":
        return history_start, today
    if preset == "3m":
        return max(history_start, _months_before(today, 3) + timedelta(days=1)), today
    if preset == "4w":
        return today - timedelta(days=27), today
    if preset is not None:
        raise BulkImportError(f"Unknown range {preset!r}: use full, 3m, 4w or --from/--to.")
    if start is None:
        raise BulkImportError("Give a range: --full-history, --last-3-months, or --from DATE.")
    end = end or today
    if end > today:
        raise BulkImportError(
            f"{end} is after today ({today}): the last partition is today; give --to {today} "
            "or an earlier date."
        )
    if start < history_start:
        raise BulkImportError(
            f"{start} is before the first partition ({history_start}); set PIPELINE_HISTORY_START "
            "earlier where Dagster runs to import older data."
        )
    return start, end


def _months_before(day: date, months: int) -> date:
    month = day.month - months
    year = day.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def backfill_params(spec: BulkImport) -> dict[str, Any]:
    """`LaunchBackfillParams` for the mutation: assets with the date range, run config, tags."""
    dated = asset_names(e for e in DATED if getattr(spec, e))
    span = {"range": {"start": spec.start.isoformat(), "end": spec.end.isoformat()}}
    filters: dict[str, Any] = {}
    if spec.projects:
        filters["projects"] = list(spec.projects)
    if spec.workers:
        filters["workers"] = list(spec.workers)
    tags = {OPERATION_TAG: BULK_IMPORT, **spec.extra_tags}
    if spec.connections:
        tags[CONNECTIONS_TAG] = connections_tag(spec.connections)
    return {
        # Dated assets only: projects and workers are staged by the initial import and kept
        # current by the sync, and leaving them out lets Pay's load follow each extract directly.
        "partitionsByAssets": [{"assetKey": {"path": [key]}, "partitions": span} for key in dated],
        "runConfigData": scope_config(spec.connections, **filters),
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
        "title": spec.title or f"Bulk import: {spec.describe()}"[:200],
    }


def graphql_request(spec: BulkImport) -> dict[str, Any]:
    """The whole POST body, ready for /graphql (what `bulk-import --print` shows)."""
    return {"query": MUTATION, "variables": {"backfillParams": backfill_params(spec)}}


def launch(graphql_url: str, spec: BulkImport, *, timeout: float = 60.0) -> str:
    """Launch the bulk import's backfill through the Dagster webserver; return its id."""
    return launch_backfill(graphql_url, backfill_params(spec), timeout=timeout)


def dates_backfill_params(
    assets: Iterable[str],
    dates: Iterable[date],
    connections: Iterable[str],
    *,
    tags: dict[str, str],
    title: str,
    description: str,
) -> dict[str, Any]:
    """`LaunchBackfillParams` for some assets over exactly these dates, for these connections."""
    return {
        "assetSelection": [{"path": [key]} for key in assets],
        "partitionNames": [day.isoformat() for day in dates],
        "runConfigData": scope_config(connections),
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
        "title": title[:200],
        "description": description,
    }


def launch_backfill(graphql_url: str, params: dict[str, Any], *, timeout: float = 60.0) -> str:
    """Launch a backfill with Dagster's public GraphQL mutation `launchPartitionBackfill` (the
    one way this pipeline launches backfills); return its id."""
    body_in = {"query": MUTATION, "variables": {"backfillParams": params}}
    try:
        response = httpx.post(graphql_url, json=body_in, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DagsterUnreachable(
            f"Cannot reach Dagster at {graphql_url} ({type(exc).__name__}): start it (make run) "
            "or pass --dagster-url."
        ) from None
    if response.status_code != 200:
        raise BulkImportError(f"Dagster answered {response.status_code} at {graphql_url}.")
    body = response.json()
    if body.get("errors"):
        raise BulkImportError(f"Dagster refused the backfill: {body['errors'][0].get('message')}")
    result = body["data"]["launchPartitionBackfill"]
    if result.get("__typename") != "LaunchBackfillSuccess":
        detail = result.get("message") or json.dumps(result)[:500]
        raise BulkImportError(
            f"Dagster refused the backfill ({result.get('__typename')}): {detail}"
        )
    return result["backfillId"]


# -- off-hours queue -----------------------------------------------------------------------------


def queue(
    engine: Engine, spec: BulkImport, not_before: datetime, now: datetime | None = None
) -> int:
    """Keep an import for the launcher sensor to send at or after `not_before`."""
    with engine.begin() as conn:
        return conn.execute(
            bulk_import.insert()
            .values(
                spec=spec.to_json(),
                not_before=not_before,
                created_at=now or datetime.now(UTC),
                status="pending",
            )
            .returning(bulk_import.c.id)
        ).scalar_one()


@dataclass(frozen=True)
class Pending:
    id: int
    spec: BulkImport
    not_before: datetime


def due(conn: Connection, now: datetime) -> list[Pending]:
    rows = conn.execute(
        sa.select(bulk_import)
        .where(bulk_import.c.status == "pending", bulk_import.c.not_before <= now)
        .order_by(bulk_import.c.not_before, bulk_import.c.id)
    ).all()
    return [Pending(r.id, BulkImport.from_json(r.spec), r.not_before) for r in rows]


def pending(conn: Connection) -> list[Pending]:
    rows = conn.execute(
        sa.select(bulk_import).where(bulk_import.c.status == "pending").order_by(bulk_import.c.id)
    ).all()
    return [Pending(r.id, BulkImport.from_json(r.spec), r.not_before) for r in rows]


def mark(
    engine: Engine,
    request_id: int,
    *,
    backfill_id: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            bulk_import.update()
            .where(bulk_import.c.id == request_id)
            .values(
                status="failed" if error else "launched",
                backfill_id=backfill_id,
                error=error,
                launched_at=now or datetime.now(UTC),
            )
        )


def parse_at(value: str, now: datetime, timezone: Any) -> datetime:
    """'22:00' (the next such local time), or an ISO date-time; returned in UTC."""
    text = value.strip()
    try:
        hour, _, minute = text.partition(":")
        if len(text) <= 5 and hour.isdigit() and minute.isdigit():
            local_now = now.astimezone(timezone)
            at = local_now.replace(hour=int(hour), minute=int(minute), second=0, microsecond=0)
            if at <= local_now:
                at = (local_now + timedelta(days=1)).replace(
                    hour=int(hour), minute=int(minute), second=0, microsecond=0
                )
            return at.astimezone(UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BulkImportError(
            f"--at {value!r}: give HH:MM (next such local time) or an ISO date-time."
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone)).astimezone(UTC)
