"""The initial import's job: what a new connection's first run materializes."""

import dagster as dg

#: Assignar's pay rates come first, so that every timesheet loaded is checked for a Rate Difference.
SNAPSHOT_ASSETS = [
    "assignar_pay_rates",
    "assignar_projects",
    "assignar_workers",
    "pay_projects",
    "pay_employees",
]
DATED_ASSETS = {
    "timesheets": ["assignar_timesheets", "pay_timesheets"],
    "orders": ["assignar_orders", "pay_orders"],
}
ALL_ASSETS = [*SNAPSHOT_ASSETS, *(key for keys in DATED_ASSETS.values() for key in keys)]


initial_import_job = dg.define_asset_job(
    "initial_import",
    selection=ALL_ASSETS,
    description="A new connection's initial import: its last 28 days, launched by "
    "initial_import_sensor with the connection's entities selected.",
    tags={"assignar/operation": "initial_import"},
)
