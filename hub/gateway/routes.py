"""The OpenAI-compatible endpoints under /v1."""

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from hub.api.deps import CurrentService, GatewayDep, is_chat_app, service_of
from hub.gateway.chat_request import parse_chat_request
from hub.gateway.errors import GatewayError
from hub.gateway.experiment_calls import ServedCall, answer_text, arm_of, when_streamed
from hub.gateway.prompt_calls import PromptCall, parse_prompt_call, prompt_chat_request
from hub.gateway.prompt_tools import PromptTools
from hub.models.mcp_server import SLUG_PATTERN
from hub.models.prompt import PromptVersion
from hub.services.service_accounts import ServiceIdentity
from hub.state import HubState

__all__ = [
    "AGENT_HEADER",
    "CHAT_COMPLETIONS_PATH",
    "PROMPT_COMPLETIONS_PATH",
    "chat_completions",
    "prompt_completions",
    "router",
]

router = APIRouter(prefix="/v1", tags=["gateway"])

# Set by the agent runtime (with the chat app's token) so usage is counted per agent as well
# as per service. Only the chat app's service may name an agent; from any other it is ignored.
AGENT_HEADER = "x-switchboard-agent"
_AGENT_SLUG = re.compile(SLUG_PATTERN)


async def chat_completions(request: Request) -> Response:
    """POST /v1/chat/completions. A plain Starlette endpoint rather than a FastAPI one: every
    model call passes here, and resolving FastAPI dependencies took about a quarter of the
    hub's CPU per call. Its errors (GatewayErrors, and refusals such as a missing token) are
    answered by the app's handlers."""
    hub_state: HubState = request.app.state.hub
    service = await service_of(request, hub_state)
    chat = parse_chat_request(await request.body())
    agent = request.headers.get(AGENT_HEADER) if is_chat_app(service) else None
    if agent is not None and not _AGENT_SLUG.fullmatch(agent):
        raise GatewayError(
            400, f"{AGENT_HEADER} must be an agent's slug (lower-case letters, digits, dashes)."
        )
    return await hub_state.gateway.complete(service=service, request=chat, agent=agent)


# Added to the app ahead of the routers (hub/main.py).
CHAT_COMPLETIONS_PATH = f"{router.prefix}/chat/completions"


async def prompt_completions(request: Request) -> Response:
    """POST /v1/prompts/{name}/completions: call a prompt by name with `{"variables": {...}}`:
    its production version (or the `version` pinned) rendered with them, answered as a chat
    completion (`"stream": true` streams). A missing or unknown variable is a 400 that names
    it. With a `unit` and a running experiment on the prompt, the unit's arm is served and
    the other arm answers in the background (hub/gateway/experiment_calls.py). A sample of the
    calls of a prompt with a live judge is judged after the answer
    (hub/evaluation/live_scorer.py). A plain Starlette endpoint answered ahead of the
    middleware stack, as `chat_completions` is: it is a model call too."""
    hub_state: HubState = request.app.state.hub
    service = await service_of(request, hub_state)
    name: str = request.path_params["name"]
    call = parse_prompt_call(await request.body())
    experiment = await hub_state.experiments.running(name) if call.unit is not None else None
    if experiment is None or call.unit is None:
        version = await hub_state.prompts.version_to_serve(name, call.version)
        response = await _serve(hub_state, service, name, version, call)
        return _handed_on(response, call, _sampled(hub_state, name, version, call))
    running, unit = experiment, call.unit
    arm = arm_of(running.id, unit, running.split)
    version = await hub_state.prompts.version_to_serve(name, running.version_of(arm))
    response = await _serve(hub_state, service, name, version, call)
    other_number = running.version_of("a" if arm == "b" else "b")
    # The other arm answers whole, whether the caller streams or not.
    whole = replace(call, stream=False, client_wants_usage=False)

    async def other_answer() -> Response:
        other = await hub_state.prompts.version_to_serve(name, other_number)
        return await _serve(hub_state, service, name, other, whole)

    def served(text: str) -> None:
        hub_state.shadow_calls.start(ServedCall(running, service, unit, arm, text), other_answer)

    return _handed_on(response, call, [served, *_sampled(hub_state, name, version, call)])


def _sampled(
    hub_state: HubState, name: str, version: PromptVersion, call: PromptCall
) -> list[Callable[[str], None]]:
    """What takes the answer to the live judge when this call is in its sample."""
    picked = hub_state.live_scorer.pick(name, version.number, call.variables)
    return [picked] if picked is not None else []


def _handed_on(
    response: Response, call: PromptCall, takers: list[Callable[[str], None]]
) -> Response:
    """`response`, its text handed to each of `takers` once it is complete."""
    if not takers:
        return response

    def done(text: str) -> None:
        for take in takers:
            take(text)

    if call.stream:
        return when_streamed(response, done)
    done(answer_text(response))
    return response


async def _serve(
    hub_state: HubState,
    service: ServiceIdentity,
    name: str,
    version: PromptVersion,
    call: PromptCall,
) -> Response:
    chat = prompt_chat_request(name, version, call)
    if version.mcp_servers:
        tools = PromptTools(hub_state.gateway, hub_state.registry, hub_state.engine)
        return await tools.complete(
            service=service,
            request=chat,
            definition=version,
            caller=service.name,
            prompt=name,
            prompt_version=version.number,
        )
    return await hub_state.gateway.complete(
        service=service, request=chat, prompt=name, prompt_version=version.number
    )


# Added to the app ahead of the routers too.
PROMPT_COMPLETIONS_PATH = f"{router.prefix}/prompts/{{name}}/completions"


@router.get("/models")
async def list_models(service: CurrentService, gateway: GatewayDep) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": entry.name,
                "object": "model",
                "created": 0,
                "owned_by": "switchboard",
                "description": entry.description,
                "fallbacks": entry.fallbacks,
                "capabilities": entry.capabilities.model_dump(),
            }
            for entry in gateway.catalog.models
        ],
    }
