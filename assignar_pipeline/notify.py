"""Telling each team what happened to its own connection: email over SMTP, optionally a webhook.

A report is per connection: a run (or backfill) that covered several connections becomes one report
for each, built from that connection's sync-log rows only, and goes to that connection's recipients
only. The SMTP password (and user name) are read from environment variables at send time; the
password never reaches a log line, a message, run config or the database. Each (connection, event,
channel) is delivered once: the `notification` row is claimed before sending, so a sensor that is
evaluated again does not send twice.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assignar_pipeline.pay import tables as t
from assignar_pipeline.sync_settings import SyncSettings, read_settings
from assignar_pipeline.synclog import COUNTS
from assignar_pipeline.windows import format_window

log = logging.getLogger(__name__)

EVENTS = {
    "import_finished": "initial import finished",
    "import_failed": "initial import failed",
    "backfill_finished": "bulk import finished",
    "backfill_failed": "bulk import finished with failures",
    "sync_failed": "sync failed",
}


@dataclass(frozen=True)
class SmtpConfig:
    """Where mail goes. Credentials are environment variable NAMES, resolved when sending."""

    host: str | None = None
    port: int = 587
    starttls: bool = True
    username_env: str = "SMTP_USERNAME"
    password_env: str = "SMTP_PASSWORD"  # noqa: S105 (a variable name, not a password)
    sender: str = "assignar-pipeline@localhost"
    timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SmtpConfig:
        """SMTP_HOST, SMTP_PORT (587), SMTP_STARTTLS (true), NOTIFY_FROM; credentials by name."""
        return cls(
            host=environ.get("SMTP_HOST") or None,
            port=int(environ.get("SMTP_PORT") or 587),
            starttls=(environ.get("SMTP_STARTTLS") or "true").strip().lower()
            not in ("0", "false", "no", "off"),
            sender=environ.get("NOTIFY_FROM") or cls.sender,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.host)


@dataclass
class Report:
    """What one connection's team hears about one run or backfill."""

    connection_id: int
    connection_key: str
    event: str  # a key of EVENTS
    ref: str  # run id or backfill id
    entities: list[dict[str, Any]] = field(default_factory=list)  # per entity: counts
    error: str | None = None
    url: str | None = None  # the run or backfill in the Dagster UI

    @property
    def event_key(self) -> str:
        return f"{self.ref}:{self.event}"[: t.notification.c.event_key.type.length]

    @property
    def totals(self) -> dict[str, int]:
        return {name: sum(int(e.get(name, 0)) for e in self.entities) for name in COUNTS}

    def subject(self) -> str:
        return f"Assignar → Pay: {self.connection_key} — {EVENTS[self.event]}"

    def body(self) -> str:
        lines = [f"Connection {self.connection_key}: {EVENTS[self.event]}.", ""]
        if self.error:
            lines += ["What went wrong, and what to do:", f"  {self.error}", ""]
        if self.entities:
            lines.append(
                "Records per step (fetched / inserted / updated / voided / quarantined / held):"
            )
            for e in self.entities:
                window = f" {e['window']}" if e.get("window") else ""
                lines.append(
                    f"  {e['entity']}{window}: {e.get('fetched', 0)} / {e.get('inserted', 0)} / "
                    f"{e.get('updated', 0)} / {e.get('voided', 0)} / {e.get('quarantined', 0)} / "
                    f"{e.get('held', 0)}"
                )
            lines.append("")
        if self.url:
            lines += [f"Details: {self.url}", ""]
        lines.append("Run `assignar-pipeline status` or `assignar-pipeline sync-log` for history.")
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        return {
            "connection": self.connection_key,
            "event": self.event,
            "summary": EVENTS[self.event],
            "ref": self.ref,
            "totals": self.totals,
            "entities": self.entities,
            "error": self.error,
            "url": self.url,
        }


def reports_for(
    conn: Connection,
    run_ids: Sequence[str],
    connection_ids: Sequence[int],
    event: str,
    ref: str,
    *,
    run_error: str | None = None,
    url: str | None = None,
) -> list[Report]:
    """One report per connection from its own sync-log rows of these runs."""
    log_table, c = t.sync_log, t.connection
    rows = conn.execute(
        sa.select(log_table, c.c.key)
        .join(c, c.c.id == log_table.c.connection_id)
        .where(log_table.c.run_id.in_(list(run_ids)))
        .order_by(log_table.c.id)
    ).all()
    keys = dict(
        conn.execute(
            sa.select(c.c.id, c.c.key).where(c.c.id.in_(list(connection_ids) or [-1]))
        ).all()
    )
    reports: dict[int, Report] = {
        cid: Report(cid, key, event, ref, url=url) for cid, key in keys.items()
    }
    merged: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:
        report = reports.setdefault(
            row.connection_id, Report(row.connection_id, row.key, event, ref, url=url)
        )
        if row.error and report.error is None:
            report.error = row.error
        if row.entity == "run":
            continue
        entry = merged.get((row.connection_id, row.entity))
        if entry is None:
            entry = {"entity": row.entity, **dict.fromkeys(COUNTS, 0)}
            merged[(row.connection_id, row.entity)] = entry
            report.entities.append(entry)
        for name in COUNTS:
            entry[name] += getattr(row, name)
        if row.window_start:
            first = entry.get("first") or row.window_start
            last = entry.get("last") or row.window_end
            entry["first"], entry["last"] = min(first, row.window_start), max(last, row.window_end)
            entry["window"] = format_window(entry["first"], entry["last"])  # last: exclusive
    for report in reports.values():
        for entry in report.entities:
            entry.pop("first", None)
            entry.pop("last", None)
        if report.error is None and run_error and event.endswith("failed"):
            report.error = run_error
        if report.error and report.event == "backfill_finished":
            report.event = "backfill_failed"  # the backfill ended, but not well for this team
    return sorted(reports.values(), key=lambda r: r.connection_key)


# -- delivery ------------------------------------------------------------------------------------


@dataclass
class Delivery:
    connection_key: str
    channel: str  # email | webhook
    target: str  # recipients, or the webhook's host (never its path: it may carry a token)
    sent: bool
    error: str | None = None
    skipped: bool = False  # already delivered for this event


def deliver(
    engine: Engine,
    reports: Sequence[Report],
    smtp: SmtpConfig,
    *,
    environ: Mapping[str, str] = os.environ,
    now: datetime | None = None,
    webhook_timeout: float = 10.0,
) -> list[Delivery]:
    """Send each report to its own connection's recipients and webhook, once per event."""
    with engine.connect() as conn:
        settings = {
            s.connection_id: s for s in read_settings(conn, ids=[r.connection_id for r in reports])
        }
    deliveries = []
    for report in reports:
        setting = settings.get(report.connection_id)
        if setting is None:
            continue
        if setting.notify_emails:
            deliveries.append(
                _once(
                    engine, report, "email", setting, now, lambda r, s: _email(r, s, smtp, environ)
                )
            )
        if setting.webhook_url:
            deliveries.append(
                _once(
                    engine,
                    report,
                    "webhook",
                    setting,
                    now,
                    lambda r, s: _webhook(r, s, environ, webhook_timeout),
                )
            )
    return deliveries


def _once(engine, report: Report, channel: str, setting: SyncSettings, now, send) -> Delivery:
    target = _target(channel, setting)
    try:
        with engine.begin() as conn:
            conn.execute(
                t.notification.insert().values(
                    connection_id=report.connection_id,
                    event_key=report.event_key,
                    channel=channel,
                    sent_at=now or datetime.now(UTC),
                )
            )
    except sa.exc.IntegrityError:
        return Delivery(report.connection_key, channel, target, sent=False, skipped=True)
    error = None
    try:
        send(report, setting)
    except NotificationError as exc:
        error = str(exc)
        log.warning(
            "Notification %s for %s not delivered: %s", channel, report.connection_key, error
        )
        with engine.begin() as conn:
            conn.execute(
                t.notification.update()
                .where(
                    t.notification.c.connection_id == report.connection_id,
                    t.notification.c.event_key == report.event_key,
                    t.notification.c.channel == channel,
                )
                .values(error=error)
            )
    return Delivery(report.connection_key, channel, target, sent=error is None, error=error)


class NotificationError(Exception):
    """A notification could not be delivered; the message says why (never a secret)."""


def _target(channel: str, setting: SyncSettings) -> str:
    if channel == "email":
        return ", ".join(setting.notify_emails)
    url = setting.webhook_url or ""
    return url if url.startswith("env:") else (urlsplit(url).hostname or "?")


def _email(
    report: Report, setting: SyncSettings, smtp: SmtpConfig, environ: Mapping[str, str]
) -> None:
    send_email(smtp, setting.notify_emails, report.subject(), report.body(), environ)


def send_email(
    smtp: SmtpConfig,
    recipients: Sequence[str],
    subject: str,
    body: str,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """One plain-text message over SMTP; NotificationError says what to fix (never a secret)."""
    if not smtp.enabled:
        raise NotificationError(
            "Email is not configured: set SMTP_HOST (and SMTP_PORT, SMTP_STARTTLS, SMTP_USERNAME, "
            "SMTP_PASSWORD) where the Dagster daemon runs."
        )
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(body)
    username, password = environ.get(smtp.username_env), environ.get(smtp.password_env)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if username:
                if not password:
                    raise NotificationError(
                        f"{smtp.username_env} is set but {smtp.password_env} is not: put the SMTP "
                        "password in it."
                    )
                client.login(username, password)
            client.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise NotificationError(
            f"The SMTP server {smtp.host}:{smtp.port} rejected the user in {smtp.username_env} or "
            f"the password in {smtp.password_env}: check both."
        ) from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise NotificationError(
            f"Could not send email through {smtp.host}:{smtp.port} ({type(exc).__name__}: "
            f"{_first_line(exc)}); check SMTP_HOST, SMTP_PORT and SMTP_STARTTLS."
        ) from None


def _webhook(
    report: Report, setting: SyncSettings, environ: Mapping[str, str], timeout: float
) -> None:
    post_webhook(
        setting.webhook_url or "",
        report.payload(),
        environ,
        timeout,
        owner=f"the webhook of {report.connection_key}",
    )


def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    environ: Mapping[str, str] = os.environ,
    timeout: float = 10.0,
    *,
    owner: str = "the webhook",
) -> None:
    """POST `payload` as JSON to `url`, or to the URL in variable NAME when `url` is env:NAME."""
    if url.startswith("env:"):
        name = url[4:]
        url = environ.get(name, "")
        if not url:
            raise NotificationError(
                f"Environment variable {name} ({owner}) is not set where the Dagster daemon runs."
            )
    host = urlsplit(url).hostname or "?"
    try:
        response = httpx.post(
            url,
            content=json.dumps(payload, default=str),
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise NotificationError(f"Webhook at {host} unreachable ({type(exc).__name__}).") from None
    if response.status_code >= 300:
        raise NotificationError(f"Webhook at {host} answered HTTP {response.status_code}.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "no detail"
