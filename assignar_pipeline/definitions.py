"""Assembles the Dagster Definitions from what assets/, resources/, schedules/ and sensors/ export.

The only module of the core that imports Dagster.
"""

import dagster as dg

from assets import ASSETS, JOBS
from resources import RESOURCES
from schedules import SCHEDULES
from sensors import SENSORS

defs = dg.Definitions(
    assets=ASSETS,
    jobs=JOBS,
    resources=RESOURCES,
    schedules=SCHEDULES,
    sensors=SENSORS,
)
