"""The `switchboard` admin command."""

from typing import Annotated

import typer
from sqlmodel import Session

from hub.core.config import get_settings
from hub.core.db import get_engine, migrate
from hub.core.roles import Role
from hub.models.service import ServiceCreate
from hub.services.service_accounts import (
    DuplicateServiceError,
    create_service,
    list_services,
    set_limits,
)
from hub.services.users import DuplicateUserError, create_user, delete_user

__all__ = ["main"]

cli = typer.Typer(help="Switchboard administration.", no_args_is_help=True)
service_cli = typer.Typer(help="Services that call the gateway.", no_args_is_help=True)
user_cli = typer.Typer(help="People who sign in to chat.", no_args_is_help=True)
db_cli = typer.Typer(help="The hub's database.", no_args_is_help=True)
cli.add_typer(service_cli, name="service")
cli.add_typer(user_cli, name="user")
cli.add_typer(db_cli, name="db")


def _session() -> Session:
    url = get_settings().sqlalchemy_url
    migrate(url)
    return Session(get_engine(url))


@service_cli.command("create")
def service_create(
    name: Annotated[str, typer.Argument(help="lower-case name, e.g. billing-api")],
    team: Annotated[str, typer.Option(help="the team that owns the service")],
    admin: Annotated[bool, typer.Option(help="may read usage across services")] = False,
) -> None:
    """Create a service and print its token (shown once; only its hash is stored)."""
    try:
        service_in = ServiceCreate(name=name, team=team, is_admin=admin)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    with _session() as session:
        try:
            _, token = create_service(session=session, service_in=service_in)
        except DuplicateServiceError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"Created service {name!r} for team {team!r}. Its token (shown only now):", err=True)
    typer.echo(token)


@service_cli.command("list")
def service_list() -> None:
    """List services."""
    with _session() as session:
        for service in list_services(session=session):
            flags = " admin" if service.is_admin else ""
            flags += " disabled" if service.disabled else ""
            flags += f" rpm={service.rpm_limit}" if service.rpm_limit else ""
            flags += f" tpm={service.tpm_limit}" if service.tpm_limit else ""
            if service.monthly_budget_usd is not None:
                flags += f" budget=${service.monthly_budget_usd:g}/month"
            typer.echo(f"{service.name}\tteam={service.team}{flags}")


@service_cli.command("limits")
def service_limits(
    name: str,
    rpm: Annotated[int | None, typer.Option(min=1, help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option(min=1, help="tokens per minute")] = None,
    budget_usd: Annotated[
        float | None, typer.Option(min=0, help="monthly budget in US dollars")
    ] = None,
) -> None:
    """Set a service's limits; a limit left out is removed. Over a limit, calls get 429."""
    with _session() as session:
        service = set_limits(
            session=session, name=name, rpm=rpm, tpm=tpm, monthly_budget_usd=budget_usd
        )
    if service is None:
        typer.echo(f"error: no service named {name!r}", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"Limits of {name!r}: {rpm or 'no'} requests and {tpm or 'no'} tokens per minute, "
        + (f"${budget_usd:g} a month." if budget_usd is not None else "no monthly budget.")
    )


@user_cli.command("create")
def user_create(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    display_name: Annotated[str | None, typer.Option(help="name shown in chat")] = None,
    team: Annotated[str, typer.Option(help="the team whose MCP servers they manage")] = "general",
    role: Annotated[
        Role, typer.Option(help="admin (everything), builder (agents, MCP servers) or member")
    ] = Role.member,
) -> None:
    """Create a person who signs in with a local password (development; people of the company
    sign in through its identity provider instead)."""
    with _session() as session:
        try:
            create_user(
                session=session,
                username=username,
                password=password,
                display_name=display_name,
                team=team,
                role=role,
            )
        except DuplicateUserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"Created user {username!r}.")


@user_cli.command("delete")
def user_delete(username: str) -> None:
    """Offboard a person: end their sessions and remove their account. What they owned stays
    theirs (admins still see it): someone created later with the same name inherits nothing."""
    with _session() as session:
        if not delete_user(session=session, username=username):
            typer.echo(f"error: no user named {username!r}", err=True)
            raise typer.Exit(1)
    typer.echo(f"Deleted user {username!r} and ended their sessions.")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations."""
    migrate(get_settings().sqlalchemy_url)
    typer.echo("Database is up to date.")


@cli.command("run")
def run(
    replicas: Annotated[
        int,
        typer.Option(
            help="Hub and chat replicas behind nginx; 2 or more need DATABASE_URL "
            "(PostgreSQL) and REDIS_URL."
        ),
    ] = 1,
) -> None:
    """Start the local model, the hub and the chat app on localhost."""
    from hub.start_platform import run_platform

    raise typer.Exit(run_platform(get_settings(), replicas=replicas))


@cli.command("hub")
def serve_one_hub() -> None:
    """Serve one hub process (a replica) on SWITCHBOARD_HUB_HOST and SWITCHBOARD_HUB_PORT;
    on SIGTERM it lets requests finish, writes what it holds, and exits."""
    from hub.serve import serve_hub

    raise typer.Exit(serve_hub(get_settings()))


def main() -> None:
    cli()
