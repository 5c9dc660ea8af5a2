"""The fault matrix: every fault the simulator can inject, through real Dagster runs into Pay on
SQLite and on PostgreSQL. Each fault meets two entities here, one per database, the entities
rotating so that each meets most faults; `make chaos` runs the whole product (every fault on every
entity, both databases) in a random order. After each case Pay equals Assignar's truth, nothing is
lost or doubled, and the sync log says what happened."""

from __future__ import annotations

import pytest

from tests.reliability.harness import ENTITIES, FAULTS, HEADER, run_case

CASES = [
    pytest.param(database, fault, entity, id=f"{fault.name.replace(' ', '_')}-{entity}-{database}")
    for i, fault in enumerate(FAULTS)
    for database, entity in [("sqlite", ENTITIES[i % 4]), ("postgresql", ENTITIES[(i + 2) % 4])]
]


@pytest.mark.parametrize(("case_pipeline", "fault", "entity"), CASES, indirect=["case_pipeline"])
def test_fault(case_pipeline, monkeypatch, fault, entity):
    """Under this fault the run recovers, quarantines or fails cleanly; a clean run converges."""
    row = run_case(case_pipeline, fault, entity, monkeypatch.setenv)
    print(f"\n{HEADER}\n{row.line()}")
    assert not row.problems, "\n".join(row.problems)
    assert (row.rows_lost, row.duplicates) == (0, 0)
