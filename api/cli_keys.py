"""``jobqueue keys``: API keys, made and revoked on the database (JOBQUEUE_DB_URL) directly.

A server on the same database sees a new or revoked key within ``JOBQUEUE_KEY_REFRESH_SECONDS``.
The commands call the same :class:`engine.Engine` methods as ``/api/v1/keys``.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from api.cli_local import CliError, load_settings, open_engine
from engine import Actor, Conflict, NotFound

if TYPE_CHECKING:
    from engine import Engine

T = TypeVar("T")
console = Console()
err = Console(stderr=True)

keys_app = typer.Typer(
    help="API keys (on JOBQUEUE_DB_URL): create, list, revoke.",
    epilog="Example: jobqueue keys create --name ci",
    no_args_is_help=True,
)


def _actor() -> Actor:
    """The audit log's actor of a command run here: the local user."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment (some containers)
        user = "unknown"
    return Actor(name=f"cli:{user}")


def _with_engine(action: Callable[[Engine], Awaitable[T]]) -> T:
    settings = load_settings()

    async def main() -> T:
        engine = await open_engine(settings.engine_config(), check_targets=False)
        try:
            return await action(engine)
        except (Conflict, NotFound) as exc:
            raise CliError(str(exc), code=1) from exc
        finally:
            await engine.close()

    return asyncio.run(main())


@keys_app.command(
    "create",
    help="Create an API key and print it, once: only its SHA-256 is stored.\n\n"
    "Example: jobqueue keys create --name ci",
)
def create(
    name: Annotated[str, typer.Option(help="The key's name: the owner of the jobs it creates")],
    admin: Annotated[
        bool, typer.Option(help="An admin key: every job, the audit log, keys")
    ] = False,
) -> None:
    try:
        key, _ = _with_engine(lambda e: e.create_key(name, admin=admin, by=_actor()))
    except ValueError as exc:
        raise CliError(str(exc), code=2) from exc
    err.print(
        f"created {'admin ' if admin else ''}key {name!r}; store it now, it is not shown again:",
        highlight=False,
    )
    sys.stdout.write(key + "\n")


@keys_app.command(
    "list",
    help="List the API keys (environment and database), never a key itself.\n\n"
    "Example: jobqueue keys list --all",
)
def list_keys(
    include_revoked: Annotated[bool, typer.Option("--all", help="Show revoked keys too")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    items: list[dict[str, Any]] = _with_engine(
        lambda e: e.list_keys(include_revoked=include_revoked)
    )
    if as_json:
        sys.stdout.write(json.dumps(items, indent=2) + "\n")
        return
    if not items:
        console.print("no keys: the API is open", highlight=False)
        return
    table = Table("name", "admin", "source", "prefix", "created", "revoked")
    for k in items:
        table.add_row(
            k["name"],
            "yes" if k["admin"] else "",
            k["source"],
            k["prefix"] or "",
            k["created_at"] or "",
            k["revoked_at"] or "",
        )
    console.print(table)


@keys_app.command(
    "revoke",
    help="Revoke a key: it answers 401 from now on; its jobs stay.\n\n"
    "Example: jobqueue keys revoke ci",
)
def revoke(name: str) -> None:
    _with_engine(lambda e: e.revoke_key(name, by=_actor()))
    console.print(f"revoked key {name!r}", highlight=False)
