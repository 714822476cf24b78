"""The MCP servers and tools a builder picks on a form, for an agent or a prompt: ticked
servers, and per server its ticked tools; a server with every tool ticked gets no allow-list,
so tools it offers later (after review) are given too."""

from starlette.datastructures import FormData

from hub.models.mcp_server import McpServerPublic

__all__ = ["allow_lists", "ticked_on_form", "ticked_tools"]


def ticked_tools(
    allowed: dict[str, list[str]], servers: list[McpServerPublic]
) -> dict[str, list[str]]:
    """Per server, the tools to show ticked: its allow-list, or all its tools without one."""
    return {s.slug: allowed.get(s.slug, [tool.name for tool in s.tools]) for s in servers}


def ticked_on_form(
    form: FormData, servers: list[McpServerPublic]
) -> tuple[list[str], dict[str, list[str]]]:
    """The servers ticked on a posted form, and per server the tools ticked."""
    selected = [str(slug) for slug in form.getlist("servers")]
    tools = {s.slug: [str(t) for t in form.getlist(f"tools:{s.slug}")] for s in servers}
    return selected, tools


def allow_lists(
    selected: list[str], tools: dict[str, list[str]], servers: list[McpServerPublic]
) -> dict[str, list[str]]:
    """The allow-lists of the selected servers: none for a server whose tools are all ticked."""
    offered = {s.slug: {tool.name for tool in s.tools} for s in servers}
    return {
        slug: tools.get(slug, [])
        for slug in selected
        if set(tools.get(slug, [])) != offered.get(slug, set())
    }
