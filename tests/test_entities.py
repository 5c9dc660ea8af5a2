"""Each entity's one declaration agrees with what the pipeline defines and what the API serves."""

from __future__ import annotations

import dagster as dg
import pytest

from assignar_pipeline.client import AssignarClient
from assignar_pipeline.definitions import defs
from assignar_pipeline.entities import DATED, ENTITIES, SNAPSHOTS, entity
from assignar_pipeline.pay.tables import STAGING
from assignar_pipeline.regions import Endpoints
from assignar_pipeline.runs import CONNECTIONS_TAG, connections_tag, scope_config
from assignar_pipeline.schemas import validate
from assignar_pipeline.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET


def test_declared_assets_exist_with_the_declared_partitioning():
    """Every extract and Pay asset an entity names is defined; dated ones are date-partitioned,
    snapshots are not."""
    for declared in ENTITIES:
        for name in declared.assets:
            asset = defs.resolve_assets_def(dg.AssetKey(name))
            assert (asset.partitions_def is not None) == declared.dated, name


def test_every_entity_has_its_staging_table_and_one_kind():
    """Each entity is staged in its declared table and is either dated or a snapshot."""
    for declared in ENTITIES:
        assert STAGING[declared.name].name == declared.staging_table
    assert sorted((*DATED, *SNAPSHOTS)) == sorted(e.name for e in ENTITIES)
    assert entity("timesheet") is entity("timesheets")
    with pytest.raises(KeyError, match="No Assignar entity"):
        entity("pay_timesheets")


def test_declared_fields_are_enough_to_validate(simulator):
    """Records asked for with only the declared fields validate without quarantine: a field
    `schemas.validate` reads and the declaration leaves out would quarantine every record."""
    endpoints = Endpoints(simulator.api_url, simulator.token_url)
    with AssignarClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, endpoints=endpoints) as client:
        for declared in ENTITIES:
            page = next(client.iter_pages(declared.resource, fields=declared.fields))
            assert page, declared.name
            if declared.dated:
                assert all(declared.window_field in r for r in page), declared.name
            result = validate(declared.name, page, timezone="Australia/Sydney")
            reasons = {q.reason for q in result.quarantined}
            assert len(result.rows) == len(page), (declared.name, sorted(reasons)[:3])


@pytest.mark.parametrize("job", ["sync_assignar", "initial_import"])
def test_scope_config_is_what_the_scope_resource_takes(job):
    """The one run-config helper, with and without filters, is valid run config for the jobs
    the schedule and the initial-import sensor launch."""
    definition = defs.resolve_job_def(job)
    dg.validate_run_config(definition, scope_config(["acme", "beta"]))
    dg.validate_run_config(definition, scope_config([], projects=["P-1"], workers=["w@x.io"]))
    assert connections_tag(["acme", "beta"]) == "acme,beta"
    assert len(connections_tag(f"c{i:04d}" for i in range(200))) == 255
    assert CONNECTIONS_TAG == "assignar/connections"
