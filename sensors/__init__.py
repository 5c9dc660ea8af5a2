"""Dagster sensors, exported for `assignar_pipeline.definitions`."""

from sensors.alerts import ALERT_SENSORS
from sensors.bulk_import import BULK_SENSORS
from sensors.initial_import import IMPORT_SENSORS
from sensors.notifications import NOTIFY_SENSORS

SENSORS: list = [*IMPORT_SENSORS, *NOTIFY_SENSORS, *BULK_SENSORS, *ALERT_SENSORS]
