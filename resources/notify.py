"""Notifications as a Dagster resource: where email goes and where the UI is, never a password.

Every field falls back to its environment variable where the sensor runs (SMTP_HOST, SMTP_PORT,
SMTP_STARTTLS, NOTIFY_FROM, DAGSTER_URL); the SMTP user name and password are only ever read from
the variables named by `username_env` and `password_env`, at send time.
"""

import os
from dataclasses import replace

import dagster as dg
from pydantic import Field

from assignar_pipeline.notify import SmtpConfig


class NotifyResource(dg.ConfigurableResource):
    """Email over SMTP (and the UI address for links) for the notification sensors."""

    smtp_host: str | None = Field(
        default=None, description="SMTP server; default SMTP_HOST; unset: email is off."
    )
    smtp_port: int | None = Field(default=None, description="Default SMTP_PORT, else 587.")
    smtp_starttls: bool | None = Field(
        default=None, description="Upgrade with STARTTLS; default SMTP_STARTTLS, else true."
    )
    username_env: str = Field(
        default="SMTP_USERNAME", description="NAME of the variable holding the SMTP user."
    )
    password_env: str = Field(
        default="SMTP_PASSWORD", description="NAME of the variable holding the SMTP password."
    )
    sender: str | None = Field(default=None, description="From address; default NOTIFY_FROM.")
    dagster_url: str | None = Field(
        default=None,
        description="The Dagster webserver: links, and backfills launched through its GraphQL "
        "API; default DAGSTER_URL.",
    )

    def smtp(self) -> SmtpConfig:
        config = SmtpConfig.from_env()
        overrides = {
            "host": self.smtp_host,
            "port": self.smtp_port,
            "starttls": self.smtp_starttls,
            "sender": self.sender,
        }
        return replace(
            config,
            username_env=self.username_env,
            password_env=self.password_env,
            **{k: v for k, v in overrides.items() if v is not None},
        )

    def ui_url(self) -> str:
        return (
            self.dagster_url or os.environ.get("DAGSTER_URL") or "http://127.0.0.1:3000"
        ).rstrip("/")

    def graphql_url(self) -> str:
        """Where the pipeline's own processes reach the webserver's GraphQL API: the UI's
        address for people can differ from the one inside a container (DAGSTER_GRAPHQL_URL)."""
        if self.dagster_url:
            return f"{self.ui_url()}/graphql"
        return os.environ.get("DAGSTER_GRAPHQL_URL") or f"{self.ui_url()}/graphql"
