"""`simulator` command group: run the Assignar simulator as a standalone HTTP server.

Registered on the project CLI with `main.add_command(simulator)`.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType

import click

from .auth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN_TTL
from .data import DEFAULT_NOW, DEFAULT_TIMEZONES, TenantConfig
from .journal import StateFile, StateFileError
from .server import SimulatorServer
from .state import Simulator
from .timeutil import parse_datetime


@click.group(name="simulator")
def simulator() -> None:
    """Simulated Assignar Operations API v2 for local runs and tests."""


#: The options that decide the generated tenant (a state file fixes them).
TENANT_OPTIONS = ("seed", "scale", "large", "workers", "projects", "days", "orders", "timezones")
TENANT_OPTIONS += ("now_text",)


@simulator.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8700, show_default=True, type=int, help="Port (0 = any free).")
@click.option("--seed", default=1, show_default=True, type=int, help="Tenant data seed.")
@click.option(
    "--scale",
    default=1.0,
    show_default=True,
    type=float,
    help="Multiply the demo's workers, projects and orders.",
)
@click.option(
    "--large",
    is_flag=True,
    help="The benchmark's large tenant (2,000 workers, 300 projects, 3 years, 50,000 orders); "
    "--scale then multiplies its workers, projects and orders.",
)
@click.option("--workers", type=int, help="Field workers (demo: 25).")
@click.option("--projects", type=int, help="Projects (demo: 8).")
@click.option("--days", type=int, help="Days of timesheets up to the simulated now (demo: 90).")
@click.option("--orders", type=int, help="Orders (demo: 300).")
@click.option(
    "--timezones",
    default=",".join(DEFAULT_TIMEZONES),
    show_default=True,
    help="Comma-separated IANA zones the tenant's projects are in.",
)
@click.option(
    "--client-id",
    default=DEFAULT_CLIENT_ID,
    show_default=True,
    help="Client id the simulator ACCEPTS at its token endpoint.",
)
@click.option(
    "--client-secret",
    default=DEFAULT_CLIENT_SECRET,
    show_default=True,
    help="Client secret the simulator ACCEPTS at its token endpoint.",
)
@click.option(
    "--now",
    "now_text",
    default=DEFAULT_NOW.isoformat(),
    show_default=True,
    help="Simulated current instant (ISO 8601; naive = UTC).",
)
@click.option(
    "--token-ttl",
    default=DEFAULT_TOKEN_TTL,
    show_default=True,
    type=int,
    help="Access token lifetime in seconds.",
)
@click.option(
    "--rate-limit",
    type=float,
    help="Refuse more than this many requests per second per client with 429 (default: no limit).",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the tenant's config and every change made through the control plane in this "
    "file (JSON Lines, no rows) and replay them when started again with the same file. "
    "Delete the file to start a new tenant.",
)
def serve(
    host: str,
    port: int,
    seed: int,
    scale: float,
    large: bool,
    workers: int | None,
    projects: int | None,
    days: int | None,
    orders: int | None,
    timezones: str,
    client_id: str,
    client_secret: str,
    now_text: str,
    token_ttl: int,
    rate_limit: float | None,
    state_path: Path | None,
) -> None:
    """Generate a tenant and serve it until interrupted (with --state: resume the kept one)."""
    try:
        now = parse_datetime(now_text)
    except ValueError:
        raise click.BadParameter(f"not an ISO date-time: {now_text}", param_hint="--now") from None
    zones = tuple(z.strip() for z in timezones.split(",") if z.strip())
    config = (TenantConfig.large if large else TenantConfig.scaled)(
        scale,
        seed=seed,
        workers=workers,
        projects=projects,
        days=days,
        orders=orders,
        now=now,
        timezones=zones,
    )
    state = StateFile(state_path) if state_path else None
    resuming = state is not None and state.path.exists()
    changes: list[dict] = []
    if resuming:
        assert state is not None
        try:
            kept, changes, warning = state.read()
        except StateFileError as exc:
            raise click.ClickException(str(exc)) from None
        if warning:
            click.echo(f"Warning: {warning}", err=True)
        _refuse_other_tenant(config, kept, state.path)
        config = kept
    started = time.monotonic()
    verb = f"Resuming the tenant kept in {state_path}" if resuming else "Generating tenant"
    click.echo(f"{verb}: {_describe(config)}", err=True)
    sim = Simulator(config, client_id=client_id, client_secret=client_secret, token_ttl=token_ttl)
    counts = ", ".join(f"{k} {len(t)}" for k, t in sim.tables.items() if len(t))
    click.echo(f"Generated in {time.monotonic() - started:.1f}s: {counts}", err=True)
    if state is not None:
        if not resuming:
            state.restart(config)
        try:
            sim.keep_state(state, changes)
        except StateFileError as exc:
            raise click.ClickException(str(exc)) from None
        if changes:
            click.echo(f"Replayed {len(changes)} change(s): now {sim.now_iso()}", err=True)
    if rate_limit:
        sim.add_fault("request_rate", count=None, rps=rate_limit)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with SimulatorServer(sim, host=host, port=port, log_level="info") as server:
        click.echo(f"API URL:   {server.api_url}")
        click.echo(f"Token URL: {server.token_url}")
        click.echo(
            f"Control:   {server.control_url}/  (faults, advance, credentials, stats, reset)"
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("Stopping simulator", err=True)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the server as Ctrl-C does, whatever disposition the parent process left
    it with: a server started by a parent that ignores SIGTERM (which children inherit) could
    otherwise only be killed."""
    raise KeyboardInterrupt


def _refuse_other_tenant(config: TenantConfig, kept: TenantConfig, path: Path) -> None:
    """Tenant options given on the command line must describe the kept tenant (or be left out):
    silently serving another tenant than asked for would mislead."""
    ctx = click.get_current_context()
    given = [
        name
        for name in TENANT_OPTIONS
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    ]
    if given and config != kept:
        options = ", ".join("--" + n.removesuffix("_text") for n in given)
        raise click.UsageError(
            f"{options} ask for another tenant than the one kept in {path} "
            f"({_describe(kept)}). Leave them out to resume it, or delete the file to start a "
            "new tenant."
        )


def _describe(config: TenantConfig) -> str:
    return (
        f"seed {config.seed}, {config.workers} workers, {config.projects} projects, "
        f"{config.days} days, {config.orders} orders, now {config.now.isoformat()}"
    )
