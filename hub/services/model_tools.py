"""The MCP tools a model is given, by an agent or a prompt: checking the choice of servers and
tools against the catalog and the registry, and the tools offered now."""

from typing import Any, Protocol

from sqlmodel import Session

from agents.spec import ToolSpec
from hub.gateway.model_catalog import ModelCatalog
from hub.models.mcp_server import McpSnapshot, McpStatus
from hub.services import mcp_servers as registry_store

__all__ = ["UsesTools", "definition_problems", "offered_tools"]


class UsesTools(Protocol):
    """An agent's or a prompt's definition: a model, MCP servers, and allow-lists of tools."""

    model: str
    mcp_servers: list[str]
    allowed_tools: dict[str, list[str]]


def _approved_tools(session: Session, snapshot_id: int | None) -> list[dict[str, Any]]:
    snapshot = session.get(McpSnapshot, snapshot_id) if snapshot_id is not None else None
    return list(snapshot.tools) if snapshot else []


def definition_problems(
    *, session: Session, definition: UsesTools, models: ModelCatalog, user: str
) -> list[str]:
    """What is wrong with a definition against the model catalog and the MCP registry;
    `user` names whose it is in the messages ("the agent", "the prompt")."""
    problems = []
    entry = models.get(definition.model)
    if entry is None:
        known = ", ".join(e.name for e in models.models)
        problems.append(
            f"The model {definition.model!r} is not in the catalog; choose one of: {known}."
        )
    elif definition.mcp_servers and not entry.capabilities.tool_calling:
        able = [e.name for e in models.models if e.capabilities.tool_calling]
        choose = (
            f"choose one that can ({', '.join(able)})"
            if able
            else "no model in the catalog can; an admin adds one to the hub's model catalog"
        )
        problems.append(
            f"The model {definition.model!r} cannot call tools, and {user} uses MCP servers: "
            f"{choose}, or take the servers out."
        )
    for slug in definition.allowed_tools:
        if slug not in definition.mcp_servers:
            problems.append(f"Tools are allowed for {slug!r}, which is not one of its MCP servers.")
    for slug in definition.mcp_servers:
        server = registry_store.get_server(session=session, slug=slug)
        if server is None:
            problems.append(f"No MCP server is registered as {slug!r}.")
            continue
        allowed = definition.allowed_tools.get(slug)
        if allowed is None:
            continue
        if not allowed:
            problems.append(
                f"Allow at least one tool of {slug!r}, or leave its allow-list out for all tools."
            )
        offered = [tool["name"] for tool in _approved_tools(session, server.approved_snapshot_id)]
        unknown = [name for name in allowed if name not in offered]
        if unknown:
            problems.append(
                f"{slug!r} offers no tool {', '.join(map(repr, unknown))}; "
                f"it offers: {', '.join(offered) or 'none'}."
            )
    return problems


def offered_tools(
    session: Session, servers: list[str], allowed_tools: dict[str, list[str]]
) -> tuple[list[ToolSpec], list[str]]:
    """The tools of the active ones of `servers` (as each server's allow-list, when it has
    one, filters them), and the servers that offer none now."""
    tools: list[ToolSpec] = []
    unavailable: list[str] = []
    for slug in servers:
        server = registry_store.get_server(session=session, slug=slug)
        if server is None or server.status != McpStatus.active:
            unavailable.append(slug)
            continue
        allowed = allowed_tools.get(slug)
        for tool in registry_store.offered_tools(session=session, server=server):
            if allowed is None or tool["name"] in allowed:
                tools.append(
                    ToolSpec(
                        server=slug,
                        name=tool["name"],
                        description=tool.get("description") or "",
                        input_schema=tool.get("input_schema") or {},
                    )
                )
    return tools, unavailable
