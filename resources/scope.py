"""What a run covers: its connections and filters, set once per run in the Launchpad."""

import dagster as dg
from pydantic import Field

from assignar_pipeline.extract import Scope


class SyncScope(dg.ConfigurableResource):
    """Run config shared by every asset of a run (`resources: {scope: {config: ...}}`)."""

    connections: list[str] = Field(
        default_factory=list,
        description="Connection keys to sync; empty means every active connection.",
    )
    projects: list[str] = Field(
        default_factory=list,
        description="Only these Assignar projects (codes or names); empty means all.",
    )
    workers: list[str] = Field(
        default_factory=list,
        description="Only these workers (employee ids, emails or full names); empty means all.",
    )
    active_projects_only: bool = Field(
        default=False, description="Import only projects that are active in Assignar."
    )
    confirmed_orders_only: bool = Field(
        default=True, description="Import only confirmed (and completed) orders."
    )

    def filters(self) -> Scope:
        return Scope(
            projects=tuple(self.projects),
            workers=tuple(self.workers),
            active_projects_only=self.active_projects_only,
            confirmed_orders_only=self.confirmed_orders_only,
        )
