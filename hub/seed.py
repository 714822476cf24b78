"""What the platform puts in its database on first start, apart from starting anything: the
development user, the setup service's token, the shipped MCP servers' registrations and the
shipped data analyst (its definition lives in agents/data_analyst/)."""

import secrets
from collections.abc import Mapping
from typing import Any

import httpx
from sqlmodel import Session, select

from agents.data_analyst import definition as analyst_definition
from hub.api.deps import service_actor
from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.gateway.model_catalog import load_model_catalog
from hub.models.agent import AgentCreate
from hub.models.service import Service
from hub.models.user import User
from hub.services import agents
from hub.services.service_accounts import ServiceIdentity, ensure_service
from hub.services.users import create_user

__all__ = [
    "BIGQUERY",
    "DATAMODEL",
    "DEV_PASSWORD",
    "DEV_USER",
    "HANDBOOK",
    "publish_analyst",
    "register_server",
    "seed_dev_user",
    "setup_token",
]

DEV_USER = "demo"
DEV_PASSWORD = "demo"
# The service that registers the shipped MCP servers and publishes the shipped agent.
SETUP_SERVICE = "platform-setup"

# The shipped MCP servers, as registered in the hub.
HANDBOOK: dict[str, Any] = {
    "slug": "handbook",
    "name": "Company handbook",
    "description": "Search and read the company handbook: expenses and travel, on-call, "
    "security and access, holidays and leave, onboarding, office and equipment.",
    "team": "platform",
    "tags": ["docs", "handbook", "shipped"],
}
DATAMODEL: dict[str, Any] = {
    "slug": "datamodel",
    "name": "Marketplace data model",
    "description": "Notes on the marketplace warehouse tables: what a row is, columns and "
    "units, joins, pitfalls, and example questions with their SQL.",
    "team": "platform",
    "tags": ["data", "docs", "shipped"],
}
BIGQUERY: dict[str, Any] = {
    "slug": "bigquery",
    "name": "Marketplace warehouse (BigQuery)",
    "description": "Read-only SQL over the marketplace dataset: list and describe tables, "
    "dry-run and run guarded SELECT queries.",
    "team": "platform",
    "tags": ["data", "sql", "shipped"],
}


def seed_dev_user(settings: Settings) -> bool:
    """In development, make a first user (an admin, so they can try every page) at once."""
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        if session.exec(select(User)).first() is not None:
            return False
        create_user(
            session=session,
            username=DEV_USER,
            password=DEV_PASSWORD,
            display_name="Demo User",
            team="platform",
            role=Role.admin,
        )
        return True


def setup_token(settings: Settings) -> str:
    """A new token of the setup service (made on first start), for registering servers."""
    token = "sb-setup-" + secrets.token_urlsafe(24)
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        ensure_service(session=session, name=SETUP_SERVICE, team="platform", token=token)
    return token


def register_server(hub_url: str, token: str, server: Mapping[str, object], url: str) -> str:
    """Register a shipped MCP server on first start, through the hub (which discovers its
    tools); say what happened."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=hub_url, headers=headers, timeout=30) as hub:
        if hub.get(f"/api/mcp/servers/{server['slug']}").status_code == 200:
            return "already registered"
        response = hub.post("/api/mcp/servers", json={**server, "url": url})
        if response.status_code != 201:
            return f"not registered: {response.json().get('detail', response.text)}"
    return "registered"


def publish_analyst(settings: Settings) -> str:
    """Publish the data analyst on first start, on the catalog's first model that can call
    tools, or else on its first model: the agent then answers that it needs a model that can
    call tools, and how one is added. It is the platform's own agent, seeded as the setup
    service past the builder's check, which refuses that pairing to people building agents.
    Say what happened."""
    catalog = load_model_catalog(settings.catalog_path)
    able = [entry for entry in catalog.models if entry.capabilities.tool_calling]
    body = AgentCreate.model_validate(
        {**analyst_definition(), "model": (able or catalog.models)[0].name}
    )
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        if agents.get_agent(session=session, slug=body.slug) is not None:
            return "already published"
        setup = session.exec(select(Service).where(Service.name == SETUP_SERVICE)).one()
        assert setup.id is not None
        actor = service_actor(ServiceIdentity(setup.id, setup.name, setup.team, setup.is_admin))
        agent = agents.create_agent(session=session, agent_in=body, actor=actor)
        agents.publish_draft(session=session, agent=agent, actor=actor)
    return "published"
