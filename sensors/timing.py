"""How often the polling sensors look (PIPELINE_SENSOR_INTERVAL seconds overrides every default)."""

import os


def interval(default: int) -> int:
    """Seconds between evaluations: `default`, or PIPELINE_SENSOR_INTERVAL where Dagster runs."""
    return int(os.environ.get("PIPELINE_SENSOR_INTERVAL") or default)
