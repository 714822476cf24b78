"""Reading what an MCP server offers: its tools (and resources and prompts where it has them),
with a hash of each tool, and how long initialize and list_tools took."""

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from mcp import ClientSession
from mcp.shared.exceptions import McpError

from hub.mcp.client import Endpoint, McpUnavailableError, open_session, unavailable
from hub.mcp.netguard import NetworkPolicy

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_ENTRIES",
    "MAX_SCHEMA_BYTES",
    "Discovery",
    "discover",
    "name_problem",
    "snapshot_digest",
    "tool_changes",
    "tool_hash",
]

logger = logging.getLogger(__name__)

# A server that pages its tool list forever is cut off here.
_MAX_PAGES = 50
# MCP's "Tool names" (SEP-986, spec 2025-11-25): 1 to 128 of A-Z a-z 0-9 _ - and dot. A tool
# name goes into the hub's call URL, so nothing else gets in; "." and ".." would be path steps.
_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
# Prompt and resource names are only shown: any printable text of a bounded length.
_MAX_LABEL = 200
# What the hub keeps of a server's offer (a whole message is at most MAX_MESSAGE_BYTES): this
# many tools, prompts and resources each (tools by name, the others in the server's order),
# descriptions cut at this many characters, and a tool whose schemas take more bytes than this
# is left out.
MAX_ENTRIES = 300
MAX_DESCRIPTION = 4000
MAX_SCHEMA_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Discovery:
    tools: list[dict[str, Any]]
    resources: list[dict[str, Any]]
    prompts: list[dict[str, Any]]
    init_latency_ms: float
    list_latency_ms: float
    # What was left out and why: "tool '../x' was refused: its name ...".
    refused: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        return snapshot_digest(self.tools)

    @property
    def refused_summary(self) -> str | None:
        """The refusals in one line (for the server's `last_error`), or None."""
        return "; ".join(self.refused)[:1000] or None


def name_problem(kind: str, name: str) -> str | None:
    """Why a name a server gave for a `kind` ("tool", "prompt", "resource") is refused, or
    None when it is acceptable."""
    shown = repr(name[:80]) + ("..." if len(name) > 80 else "")
    if kind == "tool":
        if not _TOOL_NAME.fullmatch(name) or not name.strip("."):
            return (
                f"tool {shown} was refused: its name must be 1 to 128 letters, digits, "
                "'_', '-' or '.' (and not only dots)"
            )
        return None
    if not name or len(name) > _MAX_LABEL or not name.isprintable():
        return (
            f"{kind} {shown} was refused: its name must be 1 to {_MAX_LABEL} printable "
            "characters, without control or layout characters"
        )
    return None


def _size_problem(kind: str, entry: dict[str, Any]) -> str | None:
    if kind != "tool":
        return None
    size = len(_canonical([entry.get("input_schema"), entry.get("output_schema")]))
    if size <= MAX_SCHEMA_BYTES:
        return None
    return (
        f"tool {entry['name']!r} was refused: its schemas take {size} bytes, more than the "
        f"{MAX_SCHEMA_BYTES} the hub keeps"
    )


def _cut(entry: dict[str, Any]) -> dict[str, Any]:
    """`entry` with its description cut at MAX_DESCRIPTION characters, marked where it was."""
    description = entry.get("description") or ""
    if len(description) <= MAX_DESCRIPTION:
        return entry
    mark = f" [cut by the hub: {len(description)} characters in all]"
    return {**entry, "description": description[:MAX_DESCRIPTION] + mark}


def _accepted(kind: str, entries: list[dict[str, Any]], refused: list[str]) -> list[dict[str, Any]]:
    """The entries whose names pass `name_problem` and that fit the hub's limits, their
    descriptions cut to size; each refusal is logged and noted."""
    kept = []
    for entry in entries:
        problem = name_problem(kind, entry["name"]) or _size_problem(kind, entry)
        if problem is None:
            kept.append(_cut(entry))
        else:
            logger.warning("MCP discovery: %s", problem)
            refused.append(problem)
    if len(kept) > MAX_ENTRIES:
        problem = (
            f"{len(kept) - MAX_ENTRIES} of {len(kept)} {kind}s were left out: the hub keeps "
            f"the first {MAX_ENTRIES}"
        )
        logger.warning("MCP discovery: %s", problem)
        refused.append(problem)
        kept = kept[:MAX_ENTRIES]
    return kept


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def tool_hash(tool: dict[str, Any]) -> str:
    """What a tool says it does: its name, description and schemas. A change is reviewed."""
    fields = {
        key: tool.get(key) for key in ("name", "description", "input_schema", "output_schema")
    }
    return hashlib.sha256(_canonical(fields)).hexdigest()


def snapshot_digest(tools: list[dict[str, Any]]) -> str:
    return hashlib.sha256(_canonical(sorted(tool["hash"] for tool in tools))).hexdigest()


def tool_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """Sentences saying how `after` differs from `before`."""
    old = {tool["name"]: tool for tool in before}
    new = {tool["name"]: tool for tool in after}
    changes = [f"new tool {name!r}" for name in sorted(new.keys() - old.keys())]
    changes += [f"tool {name!r} removed" for name in sorted(old.keys() - new.keys())]
    for name in sorted(old.keys() & new.keys()):
        if old[name]["hash"] == new[name]["hash"]:
            continue
        parts = [
            label
            for key, label in (
                ("description", "description"),
                ("input_schema", "input schema"),
                ("output_schema", "output schema"),
            )
            if old[name].get(key) != new[name].get(key)
        ]
        changes.append(f"tool {name!r} changed its {' and '.join(parts) or 'definition'}")
    return changes


async def _list_tools(session: ClientSession) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await session.list_tools(cursor=cursor) if cursor else await session.list_tools()
        for tool in page.tools:
            entry = {
                "name": tool.name,
                "title": tool.title,
                "description": tool.description or "",
                "input_schema": tool.inputSchema,
                "output_schema": tool.outputSchema,
            }
            entry["hash"] = tool_hash(entry)
            tools.append(entry)
        cursor = page.nextCursor
        if not cursor:
            break
    return sorted(tools, key=lambda tool: tool["name"])


async def _optional_lists(session: ClientSession) -> tuple[list[dict[str, Any]], ...]:
    capabilities = session.get_server_capabilities()
    resources: list[dict[str, Any]] = []
    prompts: list[dict[str, Any]] = []
    # Resources and prompts are informative; a server that fails to list them is still usable.
    if capabilities and capabilities.resources:
        try:
            listed = await session.list_resources()
            resources = [
                {"uri": str(r.uri), "name": r.name, "description": r.description or ""}
                for r in listed.resources
            ]
        except McpError:
            pass
    if capabilities and capabilities.prompts:
        try:
            listed_prompts = await session.list_prompts()
            prompts = [
                {"name": p.name, "description": p.description or ""} for p in listed_prompts.prompts
            ]
        except McpError:
            pass
    return resources, prompts


async def discover(
    endpoint: Endpoint, *, policy: NetworkPolicy, connect_timeout_s: float, timeout_s: float
) -> Discovery:
    """Connect, initialize, list; raise `McpUnavailableError` saying what failed."""
    started = time.perf_counter()
    try:
        with anyio.fail_after(timeout_s):
            async with open_session(
                endpoint,
                policy=policy,
                connect_timeout_s=connect_timeout_s,
                read_timeout_s=timeout_s,
            ) as session:
                initialized = time.perf_counter()
                tools = await _list_tools(session)
                listed = time.perf_counter()
                resources, prompts = await _optional_lists(session)
    except TimeoutError as error:
        raise McpUnavailableError(
            f"{endpoint.url} did not complete the MCP handshake and tool listing within "
            f"{timeout_s:.0f} s; is it an MCP server?"
        ) from error
    except McpError as error:
        raise unavailable(error, endpoint.url) from error
    refused: list[str] = []
    return Discovery(
        tools=_accepted("tool", tools, refused),
        resources=_accepted("resource", resources, refused),
        prompts=_accepted("prompt", prompts, refused),
        init_latency_ms=round((initialized - started) * 1000, 2),
        list_latency_ms=round((listed - initialized) * 1000, 2),
        refused=tuple(refused),
    )
