"""The agent pages for people: the list with search, the Agent Builder, an agent's page.

They use the same `AgentCatalog` calls as the API, so the same people see the same agents:
someone who may not read an agent gets a 404 page, someone who may read but not change it
gets 403. Forms post back; a refused form is shown again with what was typed. Publishing an
agent bound to a regression gate goes to the gate check it started; the agent's page shows the
gate's form and checks (hub/web/eval_gate_pages.py handles them).
"""

from typing import Any

import anyio
from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from hub.agent_catalog import AgentCatalog
from hub.api.deps import HubStateDep, OptionalActor, RowId
from hub.api.errors import status_of
from hub.api.routes.agents import AgentCatalogDep
from hub.api.routes.eval_gates import eval_gates_of
from hub.core.errors import NotFoundError, PermissionDeniedError, Refusal
from hub.evaluation.gates import held_back
from hub.models.actor import Actor
from hub.models.agent import AgentCreate, AgentDefinition, AgentPublic, AgentUpdate, Visibility
from hub.models.eval_gate import GateCheckPublic
from hub.models.feedback import AgentFeedback
from hub.models.mcp_server import McpServerPublic
from hub.services.agents import can_edit, get_agent
from hub.services.feedback import agent_feedback
from hub.web.gate_form import gate_form
from hub.web.pages import page, refusal_of, to_login
from hub.web.tool_choice import allow_lists, ticked_on_form, ticked_tools

__all__ = ["router", "show_agent"]

router = APIRouter(include_in_schema=False)

_TEXT_FIELDS = ("name", "slug", "description", "visibility", "instructions", "model", "starters")
_NUMBER_FIELDS = ("max_steps", "max_tokens", "timeout_s")
# The gate checks the agent's page lists, newest first.
GATE_CHECKS_SHOWN = 10
# What the draft-vs-live table compares, in the order it shows them.
_COMPARED = ("name", "description", *AgentDefinition.model_fields)


def _chat_url(hub_state: HubStateDep) -> str:
    return f"http://{hub_state.settings.app_host}:{hub_state.settings.app_port}/"


async def _not_found(request: Request, actor: Actor, error: Refusal) -> Response:
    return page(
        request,
        "agents.html",
        status=status_of(error),
        actor=actor,
        agents=[],
        mine=[],
        q="",
        error=error.message,
    )


@router.get("/agents")
async def agents_page(
    request: Request, actor: OptionalActor, agents: AgentCatalogDep, q: str = ""
) -> Response:
    if actor is None:
        return to_login(request)
    published = await agents.find(actor, text=q)
    mine = await agents.find(actor, mine=True)
    return page(request, "agents.html", actor=actor, agents=published, mine=mine, q=q, error=None)


# The Builder ------------------------------------------------------------------------------


def _form_of(agent: AgentPublic | None, servers: list[McpServerPublic]) -> dict[str, Any]:
    """The Builder's fields, from an agent's draft or (for a new one) the defaults."""
    draft = agent.draft if agent else None
    defaults = AgentDefinition(model="none")
    selected = draft.mcp_servers if draft else []
    allowed = draft.allowed_tools if draft else {}
    source = draft or defaults
    return {
        "name": agent.name if agent else "",
        "slug": agent.slug if agent else "",
        "description": agent.description if agent else "",
        "visibility": (agent.visibility if agent else Visibility.everyone).value,
        "instructions": source.instructions,
        "model": source.model,
        "starters": "\n".join(source.starters),
        **{field: str(getattr(source, field)) for field in _NUMBER_FIELDS},
        "servers": list(selected),
        "tools": ticked_tools(allowed, servers),
    }


def _form_from_post(form: FormData, servers: list[McpServerPublic]) -> dict[str, Any]:
    values: dict[str, Any] = {key: str(form.get(key, "")).strip() for key in _TEXT_FIELDS}
    values["instructions"] = str(form.get("instructions", ""))
    values.update({key: str(form.get(key, "")).strip() for key in _NUMBER_FIELDS})
    values["servers"], values["tools"] = ticked_on_form(form, servers)
    return values


def _definition_fields(values: dict[str, Any], servers: list[McpServerPublic]) -> dict[str, Any]:
    """The Builder's fields as the API's."""
    allowed = allow_lists(values["servers"], values["tools"], servers)
    return {
        "name": values["name"],
        "description": values["description"],
        "visibility": values["visibility"] or Visibility.everyone,
        "instructions": values["instructions"],
        "model": values["model"],
        "mcp_servers": values["servers"],
        "allowed_tools": allowed,
        "starters": values["starters"].splitlines(),
        **{key: values[key] for key in _NUMBER_FIELDS},
    }


async def _builder(
    request: Request,
    actor: Actor,
    agents: AgentCatalog,
    hub_state: HubStateDep,
    *,
    form: dict[str, Any],
    servers: list[McpServerPublic],
    editing: str | None,
    status: int = 200,
    error: str | None = None,
) -> Response:
    return page(
        request,
        "agent_builder.html",
        status=status,
        actor=actor,
        form=form,
        servers=servers,
        models=agents.model_names,
        without_tools=agents.models_without_tools,
        visibilities=[v.value for v in Visibility],
        editing=editing,
        chat_url=_chat_url(hub_state),
        error=error,
    )


@router.get("/agents/new")
async def new_agent_form(
    request: Request, actor: OptionalActor, agents: AgentCatalogDep, hub_state: HubStateDep
) -> Response:
    if actor is None:
        return to_login(request)
    servers = await agents.builder_servers([])
    form = _form_of(None, servers)
    form["model"] = agents.model_names[0]
    return await _builder(
        request, actor, agents, hub_state, form=form, servers=servers, editing=None
    )


@router.post("/agents/new")
async def create_from_form(
    request: Request, actor: OptionalActor, agents: AgentCatalogDep, hub_state: HubStateDep
) -> Response:
    if actor is None:
        return to_login(request)
    posted = await request.form()
    servers = await agents.builder_servers([str(s) for s in posted.getlist("servers")])
    values = _form_from_post(posted, servers)
    try:
        agent_in = AgentCreate(slug=values["slug"], **_definition_fields(values, servers))
        created = await agents.create(agent_in, actor)
    except (ValidationError, Refusal) as error:
        status, message = refusal_of(error)
        return await _builder(
            request,
            actor,
            agents,
            hub_state,
            form=values,
            servers=servers,
            editing=None,
            status=status,
            error=message,
        )
    return await _after_save(request, actor, agents, hub_state, created.slug, posted.get("action"))


async def _after_save(
    request: Request,
    actor: Actor,
    agents: AgentCatalog,
    hub_state: HubStateDep,
    slug: str,
    action: Any,
) -> Response:
    """Publish the saved draft, or open the chat to try it, as the button pressed says."""
    if action == "publish":
        try:
            published = await agents.publish(slug, actor)
        except Refusal as error:
            return await show_agent(
                request, actor, agents, hub_state, slug, status_of(error), error
            )
        if isinstance(published, GateCheckPublic):
            return _to_gate_check(slug, published)
    if action == "try":
        return RedirectResponse(_chat_url(hub_state), status_code=303)
    return RedirectResponse(f"/agents/{slug}", status_code=303)


@router.get("/agents/{slug}/edit")
async def edit_agent_form(
    request: Request,
    slug: str,
    actor: OptionalActor,
    agents: AgentCatalogDep,
    hub_state: HubStateDep,
) -> Response:
    if actor is None:
        return to_login(request)
    try:
        agent = await agents.get(slug, actor)
        if not can_edit(agent, actor):
            raise PermissionDeniedError(
                f"Only {agent.owner!r} (its owner) or an admin can change it."
            )
    except Refusal as error:
        if isinstance(error, PermissionDeniedError):
            return await show_agent(
                request, actor, agents, hub_state, slug, status_of(error), error
            )
        return await _not_found(request, actor, error)
    servers = await agents.builder_servers(agent.draft.mcp_servers)
    return await _builder(
        request,
        actor,
        agents,
        hub_state,
        form=_form_of(agent, servers),
        servers=servers,
        editing=slug,
    )


@router.post("/agents/{slug}/edit")
async def update_from_form(
    request: Request,
    slug: str,
    actor: OptionalActor,
    agents: AgentCatalogDep,
    hub_state: HubStateDep,
) -> Response:
    if actor is None:
        return to_login(request)
    posted = await request.form()
    servers = await agents.builder_servers([str(s) for s in posted.getlist("servers")])
    values = _form_from_post(posted, servers)
    values["slug"] = slug
    try:
        update = AgentUpdate(**_definition_fields(values, servers))
        await agents.update(slug, update, actor)
    except Refusal as error:
        if isinstance(error, NotFoundError):
            return await _not_found(request, actor, error)
        if isinstance(error, PermissionDeniedError):
            return await show_agent(
                request, actor, agents, hub_state, slug, status_of(error), error
            )
        status, message = refusal_of(error)
    except ValidationError as error:
        status, message = refusal_of(error)
    else:
        return await _after_save(request, actor, agents, hub_state, slug, posted.get("action"))
    return await _builder(
        request,
        actor,
        agents,
        hub_state,
        form=values,
        servers=servers,
        editing=slug,
        status=status,
        error=message,
    )


# An agent's page --------------------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {', '.join(v)}" for k, v in value.items()) or "all tools"
    return str(value)


def _draft_vs_live(agent: AgentPublic) -> list[tuple[str, str, str]]:
    """(field, draft, live) for each field in which the draft differs from the live version."""
    if agent.live is None:
        return []
    draft = {**agent.draft.model_dump(), "name": agent.name, "description": agent.description}
    live = agent.live.model_dump()
    return [
        (field.replace("_", " "), _show(draft[field]), _show(live[field]))
        for field in _COMPARED
        if draft[field] != live[field]
    ]


async def _feedback(hub_state: HubStateDep, slug: str) -> AgentFeedback | None:
    """Thumbs and the latest comments per version, for the agent's owner and admins."""

    def load() -> AgentFeedback | None:
        with Session(hub_state.engine) as session:
            agent = get_agent(session=session, slug=slug)
            return agent_feedback(session=session, agent=agent) if agent is not None else None

    return await anyio.to_thread.run_sync(load)


async def show_agent(
    request: Request,
    actor: Actor,
    agents: AgentCatalog,
    hub_state: HubStateDep,
    slug: str,
    status: int = 200,
    error: Refusal | str | None = None,
    *,
    typed_gate: dict[str, str] | None = None,
) -> Response:
    """The agent's page; `error` above it, and `typed_gate` in the gate form when a change of
    the gate was refused."""
    try:
        agent = await agents.get(slug, actor)
        gates = eval_gates_of(hub_state)
        gate = await gates.get("agent", slug, actor)
        gate_checks = await gates.checks("agent", slug, actor)
    except Refusal as missing:
        return await _not_found(request, actor, missing)
    editable = can_edit(agent, actor)
    return page(
        request,
        "agent.html",
        status=status,
        actor=actor,
        agent=agent,
        can_edit=editable,
        changes=_draft_vs_live(agent) if editable else [],
        feedback=await _feedback(hub_state, slug) if editable else None,
        shown=agent.live or agent.draft,
        chat_url=_chat_url(hub_state),
        error=error.message if isinstance(error, Refusal) else error,
        gate=gate,
        gate_form=typed_gate or gate_form(gate),
        gate_checks=gate_checks[:GATE_CHECKS_SHOWN],
        held=held_back(gate_checks) if gate is not None else {},
        models=agents.model_names,
    )


@router.get("/agents/{slug}")
async def agent_page(
    request: Request,
    slug: str,
    actor: OptionalActor,
    agents: AgentCatalogDep,
    hub_state: HubStateDep,
) -> Response:
    if actor is None:
        return to_login(request)
    return await show_agent(request, actor, agents, hub_state, slug)


@router.post("/agents/{slug}/versions/{number}/restore")
async def restore_from_page(
    request: Request,
    slug: str,
    number: RowId,
    actor: OptionalActor,
    agents: AgentCatalogDep,
    hub_state: HubStateDep,
) -> Response:
    if actor is None:
        return to_login(request)
    try:
        await agents.restore(slug, number, actor)
    except Refusal as error:
        return await show_agent(request, actor, agents, hub_state, slug, status_of(error), error)
    return RedirectResponse(f"/agents/{slug}", status_code=303)


def _to_gate_check(slug: str, check: GateCheckPublic) -> Response:
    """A gated agent's publish: the gate check that decides whether the version goes live."""
    return RedirectResponse(f"/agents/{slug}/gate-checks/{check.id}", status_code=303)


@router.post("/agents/{slug}/{action}")
async def agent_action(
    request: Request,
    slug: str,
    action: str,
    actor: OptionalActor,
    agents: AgentCatalogDep,
    hub_state: HubStateDep,
) -> Response:
    """The agent page's buttons: publish the draft, or delete the agent."""
    if actor is None:
        return to_login(request)
    try:
        if action == "publish":
            published = await agents.publish(slug, actor)
            if isinstance(published, GateCheckPublic):
                return _to_gate_check(slug, published)
        elif action == "delete":
            await agents.delete(slug, actor)
            return RedirectResponse("/agents", status_code=303)
        else:
            raise NotFoundError(f"There is no action {action!r} on an agent.")
    except Refusal as error:
        return await show_agent(request, actor, agents, hub_state, slug, status_of(error), error)
    return RedirectResponse(f"/agents/{slug}", status_code=303)
