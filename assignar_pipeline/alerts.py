"""Alerts for data engineers and teams: a check or job that starts failing, and its recovery.

An `Evaluation` is what one asset check evaluation (or one ended run) found, per subject: a
connection key, or "" for the deployment as a whole. `changes` compares it with the stored
state of each (source, subject) and keeps only what changed: passing (or never seen) to
failing, failing to passing. A check that keeps failing run after run changes nothing and so
sends nothing. `alerts_for` turns the changes into messages: one to the data-engineering
recipients (every check, every job) and one to each connection's own team for the checks that
concern it (`TEAM_CHECKS`). `record` persists the new states and returns the changes it claimed,
newest evaluation wins, so a sensor that sees an evaluation twice, or late, sends nothing twice.
Free of Dagster: the sensors read Dagster's records and call these functions.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assignar_pipeline.notify import (
    Delivery,
    NotificationError,
    SmtpConfig,
    post_webhook,
    send_email,
)
from assignar_pipeline.pay import tables as t
from assignar_pipeline.sync_settings import SettingsError, read_settings, split_emails

log = logging.getLogger(__name__)

FAILING, PASSING = "failing", "passing"
FAILED, RECOVERED = "failed", "recovered"
#: The metadata key under which every check reports its findings per connection.
FINDINGS_KEY = "by_connection"
#: Checks whose failures a connection's own team hears about (data engineers hear of all).
TEAM_CHECKS = ("quarantine_empty", "no_open_conflicts", "minutes_parity")
DATA_ENGINEERING = "data-engineering"
#: Reasons shown per connection in a message (the check's page in Dagster has the rest).
FIRST_REASONS = 3


@dataclass(frozen=True)
class Finding:
    """One subject's outcome in one evaluation."""

    subject: str  # a connection key, or "" for the deployment
    failing: bool
    count: int = 0  # records, conflicts, mismatches... behind the failure
    reasons: tuple[str, ...] = ()


def findings_metadata(findings: Sequence[Finding]) -> dict[str, dict[str, Any]]:
    """The `by_connection` metadata of a check: every connection it looked at, failing or not."""
    return {
        f.subject: {"failing": f.failing, "count": f.count, "reasons": list(f.reasons)}
        for f in findings
    }


def findings_from_metadata(value: Any, passed: bool, description: str | None) -> list[Finding]:
    """Findings from a check's `by_connection` metadata; one deployment-wide finding without it."""
    if isinstance(value, Mapping) and value:
        return [
            Finding(
                str(key),
                bool(item.get("failing")),
                int(item.get("count") or 0),
                tuple(str(r) for r in item.get("reasons") or ())[:FIRST_REASONS],
            )
            for key, item in value.items()
            if isinstance(item, Mapping)
        ]
    return [Finding("", not passed, 0, (description,) if description and not passed else ())]


@dataclass
class Evaluation:
    """What one check evaluation, or one ended run, found."""

    source: str  # "asset:check" or "job:name"
    kind: str  # check | run
    name: str  # the check's or the job's name
    order: int  # newer evaluations of the same source have larger numbers
    at: datetime
    findings: list[Finding]
    url: str  # the check (or run) in the Dagster UI
    asset: str | None = None
    severity: str = "ERROR"  # ERROR | WARN
    description: str | None = None  # what the check verifies, or the run's failure
    window: str | None = None  # the partition or window evaluated
    run_id: str | None = None

    @property
    def team(self) -> bool:
        return self.kind == "check" and self.name in TEAM_CHECKS

    @property
    def title(self) -> str:
        return f"{self.asset} {self.name}" if self.kind == "check" else f"job {self.name}"


def check_source(asset: str, check: str) -> str:
    return f"{asset}:{check}"


def job_source(job: str) -> str:
    return f"job:{job}"


@dataclass(frozen=True)
class State:
    state: str  # failing | passing
    since: datetime
    seen: int
    detail: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """A subject whose state this evaluation changed."""

    finding: Finding
    previous: State | None

    @property
    def event(self) -> str:
        return FAILED if self.finding.failing else RECOVERED


def changes(evaluation: Evaluation, states: Mapping[str, State]) -> list[Change]:
    """The subjects whose state changes (pure): never seen or passing → failing, failing →
    passing. A subject never seen that passes is no news; an evaluation not newer than the one
    that set a state is ignored."""
    found = []
    for finding in evaluation.findings:
        previous = states.get(finding.subject)
        if previous is not None and evaluation.order <= previous.seen:
            continue
        state = FAILING if finding.failing else PASSING
        if (previous is None and finding.failing) or (
            previous is not None and previous.state != state
        ):
            found.append(Change(finding, previous))
    return found


# -- messages ------------------------------------------------------------------------------------


@dataclass
class Alert:
    """One message to one audience: the data engineers, or one connection's team."""

    audience: str  # DATA_ENGINEERING or a connection key
    event: str  # failed | recovered
    evaluation: Evaluation
    changes: list[Change] = field(default_factory=list)

    @property
    def subjects(self) -> list[str]:
        return [c.finding.subject for c in self.changes]

    def subject(self) -> str:
        who = ", ".join(s or "deployment" for s in self.subjects)
        e = self.evaluation
        if self.event == FAILED:
            what = "Check failed" if e.kind == "check" else "Run failed"
            return f"[{e.severity}] {what}: {e.title} ({who})"
        what = "Check passes again" if e.kind == "check" else "Job succeeds again"
        return f"[OK] {what}: {e.title} ({who})"

    def body(self) -> str:
        e = self.evaluation
        if e.kind == "check":
            head = f"The asset check {e.name} on {e.asset} " + (
                f"failed (severity {e.severity})." if self.event == FAILED else "passes again."
            )
        else:
            head = f"A run of the job {e.name} " + (
                "failed." if self.event == FAILED else "succeeded after failures."
            )
        lines = [head]
        if e.kind == "check" and e.description:
            lines.append(f"It verifies: {e.description}")
        if e.window:
            lines.append(f"Partition or window: {e.window}")
        if e.run_id:
            lines.append(f"Run: {e.run_id}")
        lines.append("")
        for change in self.changes:
            f = change.finding
            name = f.subject or "the deployment"
            if self.event == FAILED:
                count = f" ({f.count})" if f.count else ""
                lines.append(f"{name}: failing{count}")
                lines += [f"  - {reason}" for reason in f.reasons]
                if e.kind == "run" and e.description and not f.reasons:
                    lines.append(f"  - {e.description}")
            else:
                since = change.previous.since if change.previous else None
                when = f" (failing since {since:%Y-%m-%d %H:%M} UTC)" if since else ""
                lines.append(f"{name}: passing{when}")
                if change.previous and change.previous.detail:
                    lines.append(f"  was: {change.previous.detail[0]}")
        lines.append("")
        label = "the check" if e.kind == "check" else "the run"
        lines.append(f"Open {label} in Dagster: {e.url}")
        if self.event == FAILED:
            again = "it passes again" if e.kind == "check" else "the job succeeds again"
            lines.append(f"No further message while it keeps failing; one when {again}.")
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """Slack-compatible (`text`, which Slack, Mattermost and most chat webhooks show) with
        the same facts as fields for a program to read."""
        e = self.evaluation
        return {
            "text": f"*{self.subject()}*\n{self.body()}",
            "alert": {
                "event": self.event,
                "kind": e.kind,
                "source": e.source,
                "asset": e.asset,
                "check": e.name if e.kind == "check" else None,
                "job": e.name if e.kind == "run" else None,
                "severity": e.severity,
                "window": e.window,
                "run_id": e.run_id,
                "url": e.url,
                "audience": self.audience,
                "connections": [
                    {
                        "connection": c.finding.subject,
                        "count": c.finding.count,
                        "reasons": list(c.finding.reasons),
                    }
                    for c in self.changes
                ],
            },
        }


def alerts_for(evaluation: Evaluation, found: Sequence[Change]) -> list[Alert]:
    """Data engineers: one message per event of this evaluation; each concerned connection's
    team: one message of its own, when the check is one that concerns teams."""
    alerts = []
    for event in (FAILED, RECOVERED):
        chosen = [c for c in found if c.event == event]
        if not chosen:
            continue
        alerts.append(Alert(DATA_ENGINEERING, event, evaluation, chosen))
        if evaluation.team:
            alerts += [
                Alert(c.finding.subject, event, evaluation, [c])
                for c in chosen
                if c.finding.subject
            ]
    return alerts


# -- state ---------------------------------------------------------------------------------------


def record(engine: Engine, evaluation: Evaluation) -> list[Change]:
    """Store what `evaluation` found and return the changes this call claimed.

    Each row is written only if the evaluation is newer than the one that set it (an update
    with that condition, or an insert that a concurrent writer would make fail), so two sensors
    evaluating the same record cannot both claim a change.
    """
    a = t.alert_state
    subjects = [f.subject for f in evaluation.findings]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(a).where(a.c.source == evaluation.source, a.c.subject.in_(subjects))
        ).all()
    states = {
        r.subject: State(r.state, r.since, r.seen, tuple(json.loads(r.detail or "[]")))
        for r in rows
    }
    changed = {c.finding.subject: c for c in changes(evaluation, states)}
    claimed = []
    for finding in evaluation.findings:
        previous = states.get(finding.subject)
        if previous is not None and evaluation.order <= previous.seen:
            continue
        state = FAILING if finding.failing else PASSING
        values = {
            "state": state,
            "seen": evaluation.order,
            "detail": json.dumps(list(finding.reasons)) if finding.failing else None,
        }
        if previous is None or finding.subject in changed:
            values["since"] = evaluation.at
        try:
            with engine.begin() as conn:
                if previous is None:
                    conn.execute(
                        a.insert().values(
                            source=evaluation.source, subject=finding.subject, **values
                        )
                    )
                    done = 1
                else:
                    done = conn.execute(
                        a.update()
                        .where(
                            a.c.source == evaluation.source,
                            a.c.subject == finding.subject,
                            a.c.seen == previous.seen,
                        )
                        .values(**values)
                    ).rowcount
        except sa.exc.IntegrityError:
            done = 0
        if done and finding.subject in changed:
            claimed.append(changed[finding.subject])
    return claimed


def note_delivery_error(engine: Engine, alert: Alert, error: str | None) -> None:
    """Keep why an alert was not delivered beside the states it was about (or clear it)."""
    a = t.alert_state
    with engine.begin() as conn:
        conn.execute(
            a.update()
            .where(a.c.source == alert.evaluation.source, a.c.subject.in_(alert.subjects))
            .values(error=error)
        )


# -- delivery ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipients:
    """The data engineers: who hears of every failing check and every failed run."""

    emails: tuple[str, ...] = ()
    webhook_url: str | None = None  # a URL, or env:NAME

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Recipients:
        """ALERT_EMAILS (comma-separated) and ALERT_WEBHOOK_URL, where the daemon runs."""
        emails = split_emails(environ.get("ALERT_EMAILS"))
        bad = [e for e in emails if "@" not in e]
        if bad:
            raise SettingsError(
                f"ALERT_EMAILS holds {', '.join(map(repr, bad))}, which is not an email "
                "address: give addresses such as data-eng@example.com, separated by commas."
            )
        url = (environ.get("ALERT_WEBHOOK_URL") or "").strip() or None
        if url and not url.startswith(("http://", "https://", "env:")):
            raise SettingsError(
                "ALERT_WEBHOOK_URL must be an http(s) URL (a Slack incoming webhook, for "
                "instance), or env:NAME naming the variable that holds it."
            )
        return cls(emails, url)

    @property
    def enabled(self) -> bool:
        return bool(self.emails or self.webhook_url)


def deliver_alerts(
    engine: Engine,
    alerts: Sequence[Alert],
    smtp: SmtpConfig,
    recipients: Recipients,
    *,
    environ: Mapping[str, str] = os.environ,
    webhook_timeout: float = 10.0,
) -> list[Delivery]:
    """Send each alert by email and webhook to its audience; a failed delivery is recorded in
    `alert_state.error` and logged, never retried into a duplicate."""
    teams = [a.audience for a in alerts if a.audience != DATA_ENGINEERING]
    with engine.connect() as conn:
        settings = {s.key: s for s in read_settings(conn, keys=teams)} if teams else {}
    deliveries = []
    for alert in alerts:
        if alert.audience == DATA_ENGINEERING:
            emails, webhook, owner = recipients.emails, recipients.webhook_url, "ALERT_WEBHOOK_URL"
        else:
            setting = settings.get(alert.audience)
            if setting is None:
                continue
            emails, webhook = setting.notify_emails, setting.webhook_url
            owner = f"the webhook of {alert.audience}"
        sent = []
        if emails:
            target = ", ".join(emails)
            sent.append(
                _send(alert, "email", target, send_email, smtp, emails, alert.subject(),
                      alert.body(), environ)
            )  # fmt: skip
        if webhook:
            target = webhook if webhook.startswith("env:") else (urlsplit(webhook).hostname or "?")
            sent.append(
                _send(alert, "webhook", target, post_webhook, webhook, alert.payload(), environ,
                      webhook_timeout, owner=owner)
            )  # fmt: skip
        errors = [d.error for d in sent if d.error]
        if errors:
            note_delivery_error(engine, alert, "; ".join(errors))
        deliveries += sent
    return deliveries


def _send(alert: Alert, channel: str, target: str, send, *args, **kwargs) -> Delivery:
    try:
        send(*args, **kwargs)
    except NotificationError as exc:
        log.warning("Alert %s to %s not delivered: %s", channel, alert.audience, exc)
        return Delivery(alert.audience, channel, target, sent=False, error=str(exc))
    return Delivery(alert.audience, channel, target, sent=True)


def evaluate_and_alert(
    engine: Engine,
    evaluation: Evaluation,
    smtp: SmtpConfig,
    recipients: Recipients,
    *,
    environ: Mapping[str, str] = os.environ,
) -> tuple[list[Alert], list[Delivery]]:
    """Record one evaluation and send the alerts for what it changed."""
    alerts = alerts_for(evaluation, record(engine, evaluation))
    return alerts, deliver_alerts(engine, alerts, smtp, recipients, environ=environ)
