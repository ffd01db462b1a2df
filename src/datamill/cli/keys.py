"""``datamill keys`` and ``datamill tenants``: issue, list and revoke API keys; list tenants, add credits.

They work on the server's database (the data dir's SQLite file, or DATAMILL_DATABASE_URL) directly, so run
them on the server's machine; a running server sees the changes at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from datamill.cli.errors import handle_errors
from datamill.cli.process import server_settings

if TYPE_CHECKING:
    from datamill.services.tenants import TenantService

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The server's data dir (default: DATAMILL_HOME or ~/.local/share/datamill).",
)


@contextmanager
def _tenants(data_dir: Path | None) -> Iterator[TenantService]:
    # sqlalchemy comes with the optional 'server' extra: imported here so the rest of the CLI works without it
    from datamill.services.tenants import TenantService
    from datamill.store import Store

    settings = server_settings(data_dir).server
    store = Store.from_url(settings.database_url)
    try:
        store.migrate()
        yield TenantService(store, default_credits=settings.default_credits)
    finally:
        store.close()


@click.group("keys")
def keys_group() -> None:
    """Manage API keys (each belongs to a tenant)."""


@keys_group.command("create")
@click.option("--tenant", required=True, help="The tenant the key belongs to; created if new.")
@click.option("--credits", type=float, help="Credit balance of a new tenant (default 1000).")
@_DATA_DIR
@handle_errors
def create_key(tenant: str, credits: float | None, data_dir: Path | None) -> None:
    """Print a new API key (shown only this once)."""
    with _tenants(data_dir) as service:
        issued = service.create_key(tenant, credits=credits)
    click.echo(issued.key)
    click.echo(
        f"tenant {issued.tenant.name!r} ({issued.tenant.credits:g} credits); key id {issued.key_id}", err=True
    )


@keys_group.command("list")
@_DATA_DIR
@handle_errors
def list_keys(data_dir: Path | None) -> None:
    """List keys by their prefix (the secret itself is never stored)."""
    with _tenants(data_dir) as service:
        keys = service.list_keys()
    table = Table("prefix", "key id", "tenant", "created", "revoked")
    for key in keys:
        table.add_row(
            key.prefix + "…", key.key_id, key.tenant_name, key.created_at.isoformat(), str(key.revoked)
        )
    Console().print(table)


@keys_group.command("revoke")
@click.argument("prefix_or_id")
@_DATA_DIR
@handle_errors
def revoke_key(prefix_or_id: str, data_dir: Path | None) -> None:
    """Revoke the key with this prefix (as `keys list` shows it, without the …) or id."""
    with _tenants(data_dir) as service:
        count = service.revoke_key(prefix_or_id.rstrip("…"))
    if count == 0:
        raise click.ClickException(f"no active key matches {prefix_or_id!r}")
    click.echo(f"revoked {count} key(s)")


@click.group("tenants")
def tenants_group() -> None:
    """Manage tenants and their credit balances."""


@tenants_group.command("list")
@_DATA_DIR
@handle_errors
def list_tenants(data_dir: Path | None) -> None:
    """List tenants with their credit balance."""
    with _tenants(data_dir) as service:
        tenants = service.list_tenants()
    table = Table("tenant", "id", "credits")
    for tenant in tenants:
        table.add_row(tenant.name, tenant.id, f"{tenant.credits:g}")
    Console().print(table)


@tenants_group.command("credit")
@click.argument("tenant")
@click.argument("amount", type=float)
@_DATA_DIR
@handle_errors
def credit_tenant(tenant: str, amount: float, data_dir: Path | None) -> None:
    """Add AMOUNT credits to TENANT (negative to take some away)."""
    with _tenants(data_dir) as service:
        view = service.add_credits(tenant, amount)
    click.echo(f"tenant {view.name!r} now has {view.credits:g} credits")
