"""The "Test connection" check as a Dagster job, so it can be run from the Launchpad."""

import dagster as dg

from resources.assignar import AssignarResource


@dg.op
def check_assignar_connection(context: dg.OpExecutionContext, assignar: AssignarResource) -> None:
    """Fetch a token and one record of each imported resource; fail with what to fix."""
    readable = assignar.client.check_connection()
    context.log.info(f"Connection successful; readable: {', '.join(readable)}")


@dg.job(description="Check the Assignar credentials, API access and that data can be read.")
def test_assignar_connection() -> None:
    check_assignar_connection()
