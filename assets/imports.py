"""The initial import's job: what a new connection's first run materializes."""

import dagster as dg

from assignar_pipeline.entities import BY_NAME, DATED, SNAPSHOTS, asset_names
from assignar_pipeline.runs import INITIAL_IMPORT, OPERATION_TAG

#: Assignar's pay rates come first, so that every timesheet loaded is checked for a Rate Difference.
SNAPSHOT_ASSETS = [
    "assignar_pay_rates",
    *(BY_NAME[e].extract_asset for e in SNAPSHOTS),
    *(BY_NAME[e].pay_asset for e in SNAPSHOTS),
]
ALL_ASSETS = [*SNAPSHOT_ASSETS, *asset_names(DATED)]


initial_import_job = dg.define_asset_job(
    "initial_import",
    selection=ALL_ASSETS,
    description="A new connection's initial import: its last 28 days, launched by "
    "initial_import_sensor with the connection's entities selected.",
    tags={OPERATION_TAG: INITIAL_IMPORT},
)
