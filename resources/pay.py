"""The Pay database as a Dagster resource: one engine per run, migrated before first use."""

import dagster as dg
from pydantic import Field, PrivateAttr
from sqlalchemy.engine import Engine

from assignar_pipeline.pay.database import create_pay_engine, database_url, migrate


class PayDatabaseResource(dg.ConfigurableResource):
    """Pay's database (SQLite file by default, PostgreSQL by URL)."""

    url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: PAY_DATABASE_URL or .data/pay.db."
    )

    _engine: Engine | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = create_pay_engine(self.url or database_url())
        migrate(self._engine)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise dg.DagsterInvariantViolationError("PayDatabaseResource used outside a run")
        return self._engine
