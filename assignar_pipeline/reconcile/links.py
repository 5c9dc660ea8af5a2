"""Integration links: which Pay row each Assignar record is (`integration_link`).

Written by the loaders when a match is certain and by resolutions when a person decides; both
read them here, so resolving conflicts does not reach into the loader.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.pay.tables import client, integration_link
from assignar_pipeline.reconcile.normalize import norm_code


def links(conn: Connection, connection_id: int, entity: str) -> dict[int, Any]:
    """Assignar id → link row for one entity of a connection."""
    rows = conn.execute(
        sa.select(integration_link).where(
            integration_link.c.connection_id == connection_id, integration_link.c.entity == entity
        )
    )
    return {row.external_id: row for row in rows}


def write_link(
    conn: Connection,
    connection_id: int,
    entity: str,
    external_id: int,
    pay_id: int | None,
    rule: str,
    resolution_id: int | None = None,
) -> None:
    """Insert the link, or re-point an existing one (a resolution replacing what was there)."""
    key = (
        integration_link.c.connection_id == connection_id,
        integration_link.c.entity == entity,
        integration_link.c.external_id == external_id,
    )
    values = {"pay_id": pay_id, "match_rule": rule, "resolution_id": resolution_id}
    current = conn.execute(sa.select(integration_link).where(*key)).first()
    if current is None:
        conn.execute(
            integration_link.insert().values(
                connection_id=connection_id, entity=entity, external_id=external_id, **values
            )
        )
    elif any(getattr(current, k) != v for k, v in values.items()):
        conn.execute(integration_link.update().where(*key).values(values))


class PayClients:
    """The team's Pay clients and this connection's client links, for finding without creating."""

    def __init__(self, conn: Connection, connection: Any) -> None:
        self.conn, self.connection = conn, connection
        rows = conn.execute(sa.select(client).where(client.c.team_id == connection.team_id)).all()
        self.names = {r.id: r.name for r in rows}
        self.by_code = {norm_code(r.code): r.id for r in rows if r.code}
        self.links = {k: v.pay_id for k, v in links(conn, connection.id, "client").items()}

    def find(self, staged: Any) -> int | None:
        """The Pay client an Assignar project's client is linked to, or has the code of."""
        if staged.client_assignar_id is None:
            return None
        if staged.client_assignar_id in self.links:
            return self.links[staged.client_assignar_id]
        return self.by_code.get(norm_code(staged.client_code)) if staged.client_code else None

    def ensure(self, staged: Any) -> int | None:
        """`find`, else create the Pay client; the link is written either way."""
        if staged.client_assignar_id is None:
            return None
        if staged.client_assignar_id in self.links:
            return self.links[staged.client_assignar_id]
        pay_id = self.find(staged)
        rule = "exact_code"
        if pay_id is None:
            name = staged.client_name or staged.client_code or f"Client {staged.client_assignar_id}"
            pay_id = self.conn.execute(
                client.insert()
                .values(team_id=self.connection.team_id, code=staged.client_code, name=name)
                .returning(client.c.id)
            ).scalar_one()
            self.names[pay_id] = name
            rule = "created"
        write_link(self.conn, self.connection.id, "client", staged.client_assignar_id, pay_id, rule)
        self.links[staged.client_assignar_id] = pay_id
        return pay_id
