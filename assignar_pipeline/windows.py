"""Date windows as people read them.

Internally a window is half-open, (first date, the day after the last date), as Dagster's
partition time windows and the sync log store it. Wherever a person reads one (CLI, logs, check
descriptions, metadata, emails) it is shown by `format_window` as its first and last local work
date, both included: `2026-11-06..2026-12-03`.
"""

from __future__ import annotations

from datetime import date, timedelta


def format_window(first: date, end_exclusive: date) -> str:
    """`first..last`, the last date included; give a window's end as stored (exclusive)."""
    return f"{first.isoformat()}..{(end_exclusive - timedelta(days=1)).isoformat()}"
