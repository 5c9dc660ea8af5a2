"""The "Preview import" job: what an import of one connection and window would do, written nowhere.

The same core function as `assignar-pipeline preview`; the report shows as the run's metadata
(markdown tables in the step's output event).
"""

from datetime import date

import dagster as dg
from pydantic import Field

from assignar_pipeline.preview import PreviewFailed, PreviewRefused, PreviewRequest, preview_import
from resources.assignar import AssignarResource
from resources.pay import PayDatabaseResource


class PreviewImportConfig(dg.Config):
    """The options of `assignar-pipeline preview`."""

    connection: str = Field(description="Connection key to preview (see the connections list).")
    from_date: str = Field(description="First local work date, YYYY-MM-DD.")
    to_date: str = Field(description="Last local work date (included), YYYY-MM-DD.")
    projects: list[str] = Field(
        default_factory=list,
        description="Only these Assignar projects (codes or names), e.g. one small project "
        "to test with first; empty means all.",
    )
    workers: list[str] = Field(
        default_factory=list,
        description="Only these workers (employee ids, emails or full names); empty means all.",
    )
    orders: bool = Field(
        default=False, description="Also preview confirmed orders (needs job costing)."
    )


def _date(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise dg.Failure(
            description=f"Refused: {name} {value!r} is not a date; write it as YYYY-MM-DD.",
            allow_retries=False,
        ) from None


@dg.op
def preview_import_op(
    context: dg.OpExecutionContext,
    config: PreviewImportConfig,
    assignar: AssignarResource,
    pay: PayDatabaseResource,
) -> dict:
    """Fetch, validate and match as an import would, report it, and roll every write back."""
    try:
        request = PreviewRequest(
            connection=config.connection,
            start=_date("from_date", config.from_date),
            end=_date("to_date", config.to_date),
            projects=tuple(config.projects),
            workers=tuple(config.workers),
            orders=config.orders,
        )
        report = preview_import(
            pay.engine, request, lambda c, engine: assignar.client_for(c, engine=engine)
        )
    except PreviewRefused as exc:
        raise dg.Failure(description=f"Refused: {exc}", allow_retries=False) from None
    except PreviewFailed as exc:
        raise dg.Failure(
            description=f"Preview failed; nothing was written: {exc}", allow_retries=False
        ) from None
    timesheets = next((e for e in report.entities if e.entity == "timesheets"), None)
    context.add_output_metadata(
        {
            "report": dg.MetadataValue.md(report.markdown()),
            "would_insert": sum(e.pay.get("inserted", 0) for e in report.entities),
            "would_update": sum(e.pay.get("updated", 0) for e in report.entities),
            "would_hold": sum(e.pay.get("held", 0) for e in report.entities),
            "would_quarantine": len(report.quarantined),
            "conflicts": len(report.conflicts),
            "timesheets_fetched": timesheets.fetched if timesheets else 0,
            "total_minutes": report.total_minutes,
            "total_pay": str(report.total_amount),
        }
    )
    context.log.info(f"Preview of {report.connection}: nothing was written")
    return report.as_dict()


@dg.job(
    name="preview_import",
    description="Preview an import: fetch, validate and match one connection's window exactly as "
    "an import would, and report what it would insert, update, void, hold and quarantine, and "
    "pay by employee, writing nothing.",
)
def preview_import_job() -> None:
    preview_import_op()
