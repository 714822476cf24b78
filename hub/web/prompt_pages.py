"""The prompt pages for people: the library with search, a prompt's page with its versions,
the editor with the playground beside it, and the diff of two versions.

They use the same `PromptLibrary` calls as the API, so the same people may do the same
things: anyone signed in reads every prompt; the owning team's builders and admins save
versions, choose production and bind its regression gate (hub/web/eval_gate_pages.py has the
gate's forms and gate checks' pages). A refused form is shown again with what was typed.
"""

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from hub.api.deps import HubStateDep, OptionalActor
from hub.api.errors import status_of
from hub.api.routes.eval_gates import EvalGatesDep
from hub.api.routes.prompts import PromptLibraryDep
from hub.core.errors import InvalidError, Refusal
from hub.core.roles import Permission
from hub.evaluation.gates import EvalGates
from hub.models.actor import Actor
from hub.models.eval_gate import GateCheckPublic
from hub.models.mcp_server import McpServerPublic
from hub.models.prompt import (
    PromptCreate,
    PromptDefinition,
    PromptParameters,
    PromptPublic,
    PromptVersionPublic,
)
from hub.prompt_library import PromptLibrary
from hub.state import HubState
from hub.web.gate_form import gate_form
from hub.web.pages import page, refusal_of, to_login
from hub.web.tool_choice import allow_lists, ticked_on_form, ticked_tools

__all__ = ["router", "show_prompt"]

router = APIRouter(include_in_schema=False)

# The gate checks the prompt's page lists, newest first.
GATE_CHECKS_SHOWN = 10
# The playground compares at most this many models side by side.
MAX_COMPARED_MODELS = 4
_ROLES = ("system", "user", "assistant")
_WHOLE_NUMBERS = frozenset({"max_tokens", "seed"})
_NEW_MESSAGES = [{"role": "system", "content": ""}, {"role": "user", "content": ""}]


def _form_of(
    version: PromptVersionPublic | None, model: str, servers: list[McpServerPublic]
) -> dict[str, Any]:
    """The editor's fields, from a version or (for a new prompt) the defaults."""
    parameters = version.parameters if version else {}
    schema = version.response_format if version else None
    return {
        "name": "",
        "team": "",
        "description": "",
        "messages": version.messages if version else _NEW_MESSAGES,
        "model": version.model if version else model,
        "parameters": {
            key: "\n".join(value) if key == "stop" else str(value)
            for key, value in parameters.items()
        },
        "response_format": orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode()
        if schema
        else "",
        "note": "",
        "servers": version.mcp_servers if version else [],
        "tools": ticked_tools(version.allowed_tools if version else {}, servers),
    }


def _form_from_post(form: FormData, servers: list[McpServerPublic]) -> dict[str, Any]:
    contents = [str(content) for content in form.getlist("content")]
    roles = [str(role) for role in form.getlist("role")]
    selected, tools = ticked_on_form(form, servers)
    return {
        **{key: str(form.get(key, "")).strip() for key in ("name", "team", "description")},
        "messages": [
            {"role": role, "content": content}
            for role, content in zip(roles, contents, strict=False)
            if content.strip()
        ]
        or _NEW_MESSAGES,
        "model": str(form.get("model", "")),
        "parameters": {
            key: str(form.get(f"parameter:{key}", "")).strip()
            for key in PromptParameters.model_fields
        },
        "response_format": str(form.get("response_format", "")).strip(),
        "note": str(form.get("note", "")).strip(),
        "servers": selected,
        "tools": tools,
    }


def _definition_fields(values: dict[str, Any], servers: list[McpServerPublic]) -> dict[str, Any]:
    """The editor's fields as the API's: empty parameters left out, stop words one per line,
    the response format parsed from JSON."""
    parameters: dict[str, Any] = {}
    for key, text in values["parameters"].items():
        if key == "stop":
            if words := [line for line in text.splitlines() if line]:
                parameters[key] = words
        elif text:
            parameters[key] = text
    schema = None
    if values["response_format"]:
        try:
            schema = orjson.loads(values["response_format"])
        except orjson.JSONDecodeError as exc:
            raise InvalidError(f"The response format is not valid JSON: {exc}.") from exc
        if not isinstance(schema, dict):
            raise InvalidError('The response format must be a JSON schema object, {"type": ...}.')
    messages = [m for m in values["messages"] if m["content"].strip()]
    if not messages:
        raise InvalidError("Write at least one message.")
    return {
        "messages": messages,
        "model": values["model"],
        "parameters": parameters,
        "response_format": schema,
        "note": values["note"],
        "mcp_servers": values["servers"],
        "allowed_tools": allow_lists(values["servers"], values["tools"], servers),
    }


def _editor(
    request: Request,
    actor: Actor,
    prompts: PromptLibrary,
    *,
    form: dict[str, Any],
    servers: list[McpServerPublic],
    prompt: PromptPublic | None,
    based_on: int | None = None,
    status: int = 200,
    error: str | None = None,
) -> Response:
    models = prompts.models.models
    return page(
        request,
        "prompt_editor.html",
        status=status,
        actor=actor,
        form=form,
        servers=servers,
        prompt=prompt,
        based_on=based_on,
        roles=_ROLES,
        models=[entry.name for entry in models],
        # What the playground needs to price a run: dollars per million tokens in and out.
        prices={
            entry.name: [entry.input_usd_per_million, entry.output_usd_per_million]
            for entry in models
        },
        parameters=list(PromptParameters.model_fields),
        whole_numbers=_WHOLE_NUMBERS,
        teams=sorted(actor.teams or {actor.team}),
        max_models=MAX_COMPARED_MODELS,
        error=error,
    )


def _refused(request: Request, actor: Actor, error: Refusal) -> Response:
    return page(
        request,
        "prompts.html",
        status=status_of(error),
        actor=actor,
        may_build=actor.may(Permission.build),
        prompts=[],
        q="",
        team="",
        error=error.message,
    )


@dataclass(frozen=True, slots=True)
class _PostedForm:
    form: FormData
    servers: list[McpServerPublic]
    values: dict[str, Any]


async def _posted(request: Request, prompts: PromptLibrary) -> _PostedForm:
    """The editor's posted form, with the MCP servers it may offer and its fields."""
    form = await request.form()
    servers = await prompts.builder_servers([str(s) for s in form.getlist("servers")])
    return _PostedForm(form, servers, _form_from_post(form, servers))


def _form_refused(
    request: Request,
    actor: Actor,
    prompts: PromptLibrary,
    posted: _PostedForm,
    prompt: PromptPublic | None,
    error: ValidationError | Refusal,
) -> Response:
    """The editor again, with what was typed and why it was refused."""
    status, message = refusal_of(error)
    return _editor(
        request,
        actor,
        prompts,
        form=posted.values,
        servers=posted.servers,
        prompt=prompt,
        status=status,
        error=message,
    )


@router.get("/prompts")
async def library_page(
    request: Request, actor: OptionalActor, prompts: PromptLibraryDep, q: str = "", team: str = ""
) -> Response:
    if actor is None:
        return to_login(request)
    found = await prompts.find(q[:200] or None, team[:100] or None)
    return page(
        request,
        "prompts.html",
        actor=actor,
        may_build=actor.may(Permission.build),
        prompts=found,
        q=q,
        team=team,
        error=None,
    )


@router.get("/prompts/new")
async def new_prompt_form(
    request: Request, actor: OptionalActor, prompts: PromptLibraryDep
) -> Response:
    if actor is None:
        return to_login(request)
    servers = await prompts.builder_servers([])
    form = _form_of(None, prompts.models.models[0].name, servers)
    form["team"] = actor.team
    return _editor(request, actor, prompts, form=form, servers=servers, prompt=None)


@router.post("/prompts/new")
async def create_from_form(
    request: Request, actor: OptionalActor, prompts: PromptLibraryDep
) -> Response:
    if actor is None:
        return to_login(request)
    posted = await _posted(request, prompts)
    try:
        prompt_in = PromptCreate.model_validate(
            {
                **_definition_fields(posted.values, posted.servers),
                "name": posted.values["name"],
                "team": posted.values["team"] or None,
                "description": posted.values["description"],
            }
        )
        created = await prompts.create(prompt_in, actor)
    except (ValidationError, Refusal) as error:
        return _form_refused(request, actor, prompts, posted, None, error)
    return RedirectResponse(f"/prompts/{created.name}", status_code=303)


async def show_prompt(
    request: Request,
    actor: Actor,
    prompts: PromptLibrary,
    gates: EvalGates,
    hub_state: HubState,
    name: str,
    *,
    status: int = 200,
    error: str | None = None,
    typed_gate: dict[str, str] | None = None,
) -> Response:
    """The prompt's page; `error` above it, and `typed_gate` in the gate form when a change of
    the gate was refused."""
    try:
        prompt = await prompts.get(name)
        versions = await prompts.versions(name)
        gate = await gates.get("prompt", name, actor)
        gate_checks = await gates.checks("prompt", name, actor)
    except Refusal as refusal:
        return _refused(request, actor, refusal)
    return page(
        request,
        "prompt.html",
        status=status,
        actor=actor,
        prompt=prompt,
        versions=versions,
        can_change=actor.can_manage(prompt.team),
        hub_url=hub_state.settings.hub_public_url,
        example_variables=orjson.dumps({variable: "..." for variable in prompt.variables}).decode(),
        error=error,
        gate=gate,
        gate_form=typed_gate or gate_form(gate),
        gate_checks=gate_checks[:GATE_CHECKS_SHOWN],
        models=[entry.name for entry in prompts.models.models],
    )


@router.get("/prompts/{name}")
async def prompt_page(
    request: Request,
    name: str,
    actor: OptionalActor,
    prompts: PromptLibraryDep,
    gates: EvalGatesDep,
    hub_state: HubStateDep,
) -> Response:
    if actor is None:
        return to_login(request)
    return await show_prompt(request, actor, prompts, gates, hub_state, name)


@router.get("/prompts/{name}/edit")
async def edit_prompt_form(
    request: Request,
    name: str,
    actor: OptionalActor,
    prompts: PromptLibraryDep,
    version: int | None = None,
) -> Response:
    """The editor and playground, filled with `version` (production when left out)."""
    if actor is None:
        return to_login(request)
    try:
        prompt = await prompts.get(name)
        shown = await prompts.version(name, version or prompt.production_version or 1)
    except Refusal as refusal:
        return _refused(request, actor, refusal)
    servers = await prompts.builder_servers(shown.mcp_servers)
    form = _form_of(shown, prompts.models.models[0].name, servers)
    return _editor(
        request, actor, prompts, form=form, servers=servers, prompt=prompt, based_on=shown.number
    )


@router.post("/prompts/{name}/edit")
async def save_version_from_form(
    request: Request,
    name: str,
    actor: OptionalActor,
    prompts: PromptLibraryDep,
) -> Response:
    """Save the editor's fields as the next version; "Save and make production" ships it."""
    if actor is None:
        return to_login(request)
    posted = await _posted(request, prompts)
    try:
        prompt = await prompts.get(name)
    except Refusal as refusal:
        return _refused(request, actor, refusal)
    try:
        definition = PromptDefinition.model_validate(
            _definition_fields(posted.values, posted.servers)
        )
        saved = await prompts.add_version(name, definition, actor)
        if posted.form.get("action") == "production":
            moved = await prompts.make_production(name, saved.number, actor)
            return _after_move(name, moved)
    except (ValidationError, Refusal) as error:
        return _form_refused(request, actor, prompts, posted, prompt, error)
    return RedirectResponse(f"/prompts/{name}", status_code=303)


def _after_move(name: str, moved: PromptPublic | GateCheckPublic) -> Response:
    """The prompt's page once production moved, or the gate check that decides whether it
    will."""
    if isinstance(moved, GateCheckPublic):
        return RedirectResponse(f"/prompts/{name}/gate-checks/{moved.id}", status_code=303)
    return RedirectResponse(f"/prompts/{name}", status_code=303)


async def _move_production(
    request: Request,
    name: str,
    actor: Actor,
    prompts: PromptLibrary,
    gates: EvalGates,
    hub_state: HubState,
    move: Awaitable[PromptPublic | GateCheckPublic],
) -> Response:
    """Back to the prompt's page once production moved (or to the gate check started), or on
    it with the refusal."""
    try:
        moved = await move
    except Refusal as error:
        status, message = refusal_of(error)
        return await show_prompt(
            request, actor, prompts, gates, hub_state, name, status=status, error=message
        )
    return _after_move(name, moved)


@router.post("/prompts/{name}/production")
async def make_production_from_form(
    request: Request,
    name: str,
    actor: OptionalActor,
    prompts: PromptLibraryDep,
    gates: EvalGatesDep,
    hub_state: HubStateDep,
) -> Response:
    if actor is None:
        return to_login(request)
    text = str((await request.form()).get("version", ""))
    if not text.isdigit():
        return await show_prompt(
            request, actor, prompts, gates, hub_state, name, status=422, error="Choose a version."
        )
    move = prompts.make_production(name, int(text), actor)
    return await _move_production(request, name, actor, prompts, gates, hub_state, move)


@router.post("/prompts/{name}/rollback")
async def roll_back_from_form(
    request: Request,
    name: str,
    actor: OptionalActor,
    prompts: PromptLibraryDep,
    gates: EvalGatesDep,
    hub_state: HubStateDep,
) -> Response:
    """A roll back returns to a version that was production: it is not gated."""
    if actor is None:
        return to_login(request)
    move = prompts.rollback(name, actor)
    return await _move_production(request, name, actor, prompts, gates, hub_state, move)


@router.get("/prompts/{name}/diff")
async def diff_page(
    request: Request,
    name: str,
    actor: OptionalActor,
    prompts: PromptLibraryDep,
) -> Response:
    """Two versions side by side as a line diff; `from` and `to` pick them (by default the
    version before the newest, and the newest)."""
    if actor is None:
        return to_login(request)
    try:
        versions = await prompts.versions(name)
        numbers = [version.number for version in versions]
        newest = numbers[0]
        old = _version_number(request.query_params.get("from"), max(newest - 1, 1))
        new = _version_number(request.query_params.get("to"), newest)
        diff = await prompts.diff(name, old, new)
    except Refusal as refusal:
        return _refused(request, actor, refusal)
    return page(request, "prompt_diff.html", actor=actor, numbers=numbers, diff=diff)


def _version_number(text: str | None, default: int) -> int:
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise InvalidError(f"{text!r} is not a version number; pick one such as 1 or 2.")
    return int(text)
