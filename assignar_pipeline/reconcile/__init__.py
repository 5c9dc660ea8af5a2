"""Reconciliation: matching Assignar's projects, workers and rates to Pay's, the conflicts a
person resolves, and the resolutions that later syncs replay (pay-domain.md §3.4)."""
