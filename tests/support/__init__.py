"""Test helpers shared by the test suite (throw-away PostgreSQL server, …)."""
