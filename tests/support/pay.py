"""Whole-database views of the Pay database for tests: per-table checksums, and a text scan."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assignar_pipeline.pay.tables import metadata


def table_rows(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every table, sorted in Python (JSON columns cannot be ordered in SQL)."""
    with engine.connect() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(sa.select(table))), key=repr)
            for table in metadata.sorted_tables
        }


def table_checksums(engine: Engine) -> dict[str, str]:
    """SHA-256 of each table's sorted rows: equal checksums mean equal contents."""
    return {
        name: hashlib.sha256(repr(rows).encode()).hexdigest()
        for name, rows in table_rows(engine).items()
    }


def cells_containing(engine: Engine, needle: str) -> list[tuple[str, str]]:
    """(table, column) of every cell whose text contains `needle`, across the whole database."""
    found = []
    for name, rows in table_rows(engine).items():
        columns = [c.name for c in metadata.tables[name].columns]
        for row in rows:
            found += [
                (name, col) for col, value in zip(columns, row, strict=True) if needle in str(value)
            ]
    return found
