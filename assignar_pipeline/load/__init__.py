"""Staging → Pay: link what is certain, load what is linked, hold the rest on a conflict.

Certain means an existing link, an exact project code, an exact employee number, a unique email,
or a normalised name with the same client (projects) or date of birth (workers); see
`reconcile/matching.py`. Anything else becomes a conflict (Duplicate Project, Worker Mismatch)
that a person resolves, and the timesheets and orders that depend on it are held in `sync_hold`,
counted, and loaded once it is resolved. A timesheet is priced at Pay's rate; where Assignar's
rate differs it waits on a Rate Difference conflict. A timesheet Pay has processed or paid is never
changed: a later upstream change becomes an adjustment conflict.

Each loader runs inside the caller's transaction for one connection, so Pay never shows half a
window, and writes only rows whose content changed, so a re-run leaves Pay byte-for-byte equal.

One module per entity (`projects`, `workers`, `timesheets` with `pricing` and `timesheet_plan`,
`orders`), what they share in `common`; this package names the public loaders.
"""

from __future__ import annotations

from assignar_pipeline.load.common import OUTCOMES, LoadCounts
from assignar_pipeline.load.orders import load_orders
from assignar_pipeline.load.projects import load_projects
from assignar_pipeline.load.timesheets import effective_minutes, load_timesheets
from assignar_pipeline.load.workers import load_workers
from assignar_pipeline.reconcile.normalize import norm_code, norm_email, norm_name
from assignar_pipeline.reconcile.policy import APPROVED_STATUSES, LOCKED_STATUSES

__all__ = [
    "APPROVED_STATUSES",
    "LOCKED_STATUSES",
    "OUTCOMES",
    "LoadCounts",
    "effective_minutes",
    "load_orders",
    "load_projects",
    "load_timesheets",
    "load_workers",
    "norm_code",
    "norm_email",
    "norm_name",
]
