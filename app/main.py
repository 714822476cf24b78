"""Switchboard's chat front end: thin Chainlit handlers over the hub's gateway.

Run from the repository root: `chainlit run app/main.py --headless --host 127.0.0.1 --port 8000`.
"""

import asyncio
import logging
import time
from functools import cache
from typing import Any

import chainlit as cl
from chainlit.data import get_data_layer
from chainlit.data.base import BaseDataLayer
from chainlit.input_widget import Switch
from chainlit.server import app as chainlit_app
from chainlit.types import ThreadDict
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from agents.hub_client import HubClient, HubError, McpServerInfo
from agents.runtime.approval import QueryApproval
from agents.spec import AgentSpec
from app.attaching import prepare_turn
from app.auth_secret import ensure_auth_secret
from app.branch_chat import add_branch_chat, show_controls, show_thread_controls, start_turn
from app.chainlit_routes import add_chainlit_routes
from app.conversation_routes import add_conversation_routes
from app.data_layer import SwitchboardDataLayer
from app.file_store import LocalFileStore, add_file_route
from app.history import cut_off_reply, to_openai_messages
from app.home import empty_home_notice, home_profiles
from app.hub_links import add_hub_links
from app.metrics import ChatMetrics, add_metrics_route
from app.search_page import add_search_routes
from app.server_switches import enabled_servers, setting_id
from app.sharing import (
    SHARE_COMMAND,
    add_continue_route,
    share_body,
    share_command,
    share_request,
    snapshot_of,
)
from app.sign_in import HubSessions, SignInGate, cookies_of
from app.turns import AgentHost, parse_profile
from app.uploads import add_upload_route
from hub.api.contract import ShareAudience
from hub.core.config import get_settings
from hub.core.logs import configure_logging
from hub.core.request_ids import RequestIdScope, new_request_id
from hub.identity.cookies import SESSION_COOKIE

__all__: list[str] = []

logger = logging.getLogger(__name__)

# Chainlit checks for the secret right after importing this module.
ensure_auth_secret(get_settings().data_dir)
configure_logging(get_settings().log_format, get_settings().log_level)

_MODEL_KEY = "model"


@cache
def hub_client() -> HubClient:
    settings = get_settings()
    return HubClient(hub_url=settings.hub_url, token=settings.app_service_token)


@cache
def file_store() -> LocalFileStore:
    return LocalFileStore(get_settings().data_dir / "chat-files")


@cache
def chat_metrics() -> ChatMetrics:
    return ChatMetrics()


add_file_route(chainlit_app, file_store())
add_chainlit_routes(chainlit_app, hub=hub_client)
add_metrics_route(chainlit_app, chat_metrics(), get_settings().metrics_token)
add_search_routes(chainlit_app, hub=hub_client)
add_upload_route(
    chainlit_app, hub=hub_client, max_bytes=lambda: get_settings().chat_attachment_max_bytes
)
add_conversation_routes(
    chainlit_app, files=file_store, max_import_bytes=lambda: get_settings().chat_import_max_bytes
)


@cl.data_layer
def data_layer() -> BaseDataLayer:
    return SwitchboardDataLayer(
        get_settings().sqlalchemy_url, files=file_store(), forget=agent_host().forget
    )


@cl.on_app_shutdown
async def close_hub_clients() -> None:
    await agent_host().close()
    await hub_client().aclose()


@cache
def hub_sessions() -> HubSessions:
    return HubSessions(hub_client)


_settings = get_settings()
chainlit_app.add_middleware(
    SignInGate,
    sessions=hub_sessions(),
    hub_url=_settings.hub_public_url,
    chat_url=_settings.app_public_url,
)


add_continue_route(
    chainlit_app, sessions=hub_sessions(), hub=hub_client, chat_url=_settings.app_public_url
)
add_hub_links(chainlit_app, sessions=hub_sessions(), hub_url=_settings.hub_public_url)


@cl.header_auth_callback
async def sign_in(headers: Headers) -> cl.User | None:
    """The person whose hub session cookie came with the request (the hub signs people in)."""
    token = cookies_of(headers).get(SESSION_COOKIE)
    if not token:
        return None
    try:
        person = await hub_sessions().person(token)
    except HubError as error:
        logger.warning("cannot check a sign-in at the hub: %s", error)
        return None
    if person is None:
        return None
    return cl.User(
        identifier=person.key,
        display_name=person.display_name,
        metadata={
            "username": person.username,
            "email": person.email,
            "role": person.role,
            "teams": list(person.teams),
        },
    )


@cl.on_logout
async def sign_out(request: Request, response: Response) -> None:
    """Signing out of the chat signs out of the hub too."""
    if token := request.cookies.get(SESSION_COOKIE):
        try:
            await hub_sessions().end(token)
        except HubError as error:
            logger.warning("cannot end the sign-in at the hub: %s", error)
    response.delete_cookie(SESSION_COOKIE, domain=get_settings().session_cookie_domain or None)


def username(user: cl.User | cl.PersistedUser | None) -> str:
    """The hub's name for the person signed in to the chat."""
    name = (user.metadata or {}).get("username") if user is not None else None
    return str(name) if name else "anonymous"


@cl.set_chat_profiles
async def chat_profiles(
    current_user: cl.User | None, language: str | None = None
) -> list[cl.ChatProfile]:
    try:
        models = await hub_client().list_models()
    except HubError as error:
        # The chat still opens and says why there is nothing to pick (`start`).
        logger.warning("cannot list models: %s", error)
        return []
    if current_user is None:
        return home_profiles(models, [])
    try:
        agents = await hub_client().list_agents(user=username(current_user))
    except HubError as error:
        logger.warning("cannot list agents: %s", error)
        agents = []
    return home_profiles(models, agents)


add_branch_chat(profiles=lambda: chat_profiles(cl.context.session.user), model_key=_MODEL_KEY)


@cache
def agent_host() -> AgentHost:
    settings = get_settings()
    return AgentHost(
        hub=hub_client(),
        database_url=settings.sqlalchemy_url,
        otlp_endpoint=settings.otlp_endpoint,
    )


async def _run_spec(model: str, settings: dict[str, Any], person: str) -> AgentSpec:
    """What this turn runs: the agent the profile names, or a chat with the model and the
    MCP servers switched on."""
    if agent := parse_profile(model):
        slug, draft = agent
        return await hub_client().agent_run_spec(slug=slug, user=person, draft=draft)
    servers = sorted(enabled_servers(settings))
    return await hub_client().model_chat_spec(model=model, servers=servers, user=person)


async def _active_servers() -> list[McpServerInfo]:
    try:
        return await hub_client().list_mcp_servers()
    except HubError as error:
        logger.warning("cannot list MCP servers: %s", error)
        return []


async def _send_settings(current: dict[str, Any]) -> None:
    """One switch per active MCP server; they apply to this conversation only."""
    servers = await _active_servers()
    if not servers:
        return
    switches = [
        Switch(
            id=setting_id(server.slug),
            label=f"{server.name} ({len(server.tools)} tools)",
            initial=bool(current.get(setting_id(server.slug), False)),
            description=server.description or None,
        )
        for server in servers
    ]
    # ChatSettings takes a list of InputWidget; a list of Switch is one, but lists are invariant.
    await cl.ChatSettings(switches).send()  # type: ignore[arg-type]


@cl.on_chat_start
async def start() -> None:
    await cl.context.emitter.set_commands([share_command()])
    profile = cl.user_session.get("chat_profile")
    cl.user_session.set(_MODEL_KEY, profile)
    if profile is None and (notice := await empty_home_notice(hub_client())):
        await cl.ErrorMessage(content=notice, author="Switchboard").send()
        return
    if parse_profile(profile) is None:
        # An agent comes with its own MCP servers; switches are for chatting with a model.
        await _send_settings({})


async def _remember_settings(settings: dict[str, Any]) -> None:
    # Chainlit writes thread metadata only when the browser disconnects; write it now so the
    # toggles stay with the conversation even if the app stops first.
    layer, session = get_data_layer(), cl.context.session
    if layer and session.thread_id and session.has_first_interaction:
        await layer.update_thread(session.thread_id, metadata={"chat_settings": settings})


@cl.on_settings_update
async def settings_changed(settings: dict[str, Any]) -> None:
    await _remember_settings(dict(cl.context.session.chat_settings))


@cl.on_chat_resume
async def resume(thread: ThreadDict) -> None:
    # Chainlit refills the chat context from the thread's steps right after this hook, and
    # each turn's history is built from that context; what is left is the model to talk to.
    # Thread metadata is only written when the browser disconnects, so fall back to the tag
    # Chainlit puts on the thread (the chat profile) at its first message.
    metadata = thread.get("metadata") or {}
    tags = thread.get("tags") or []
    model = (
        (metadata.get(_MODEL_KEY) if isinstance(metadata, dict) else None)
        or (tags[0] if tags else None)
        or cl.user_session.get("chat_profile")
    )
    cl.user_session.set(_MODEL_KEY, model)
    await cl.context.emitter.set_commands([share_command()])
    if parse_profile(model) is None:
        await _send_settings(dict(cl.context.session.chat_settings))
    await show_thread_controls(thread)


async def _model() -> str:
    if model := cl.user_session.get(_MODEL_KEY):
        return str(model)
    models = await hub_client().list_models()
    if not models:
        raise HubError("The hub has no models configured.")
    cl.user_session.set(_MODEL_KEY, models[0].id)
    return models[0].id


async def _share(message: cl.Message) -> None:
    """Share the conversation as it is now; the link comes back as a note from Switchboard."""
    person, thread_id = cl.context.session.user, cl.context.session.thread_id
    layer = get_data_layer()
    thread = await layer.get_thread(thread_id) if layer and thread_id else None
    if person is None or thread is None or not thread.get("steps"):
        await cl.ErrorMessage(
            content="There is nothing to share yet: write a message first, then share.",
            author="Switchboard",
        ).send()
        return
    audience, days, trace = share_request(message.content)
    snapshot = snapshot_of(
        thread,
        files=file_store(),
        person=username(person),
        profile=str(cl.user_session.get(_MODEL_KEY) or ""),
    )
    try:
        share = await hub_client().create_share(
            user=username(person),
            body=share_body(thread, snapshot, audience=audience, days=days, trace=trace),
        )
    except HubError as error:
        await cl.ErrorMessage(content=f"Not shared: {error}", author="Switchboard").send()
        return
    who = "everyone signed in" if audience == ShareAudience.company else f"team {share['team']}"
    await cl.Message(
        author="Switchboard",
        content=f"Shared with {who} until {share['expires_at'][:10]}: {share['url']}\n\n"
        "It shows the conversation as it is now"
        + {"none": "", "redacted": ", with the agent's trace (what went in and out hidden)"}.get(
            trace.value, ", with the agent's trace"
        )
        + f". See or revoke your links at {get_settings().hub_public_url}/shares.",
    ).send()


@cl.on_message
async def on_message(message: cl.Message) -> None:
    # One request id for the whole turn: every call to the hub carries it, and the hub passes
    # it on to the provider and the MCP servers.
    with RequestIdScope(new_request_id()):
        await _answer(message)


async def _answer(message: cl.Message) -> None:
    if message.command == SHARE_COMMAND:
        await _share(message)
        return
    if layer := get_data_layer():
        # Stored before the model is called, not whenever Chainlit's background write lands.
        await layer.create_step(message.to_dict())
    # Each branch of the conversation (app/branches.py) has its own memory.
    memory_key = await start_turn(message)
    context = cl.chat_context.get()
    history = to_openai_messages(context)
    try:
        model = await _model()
    except HubError as error:
        await cl.ErrorMessage(content=str(error), author="Switchboard").send()
        return
    person = username(cl.context.session.user)
    settings = dict(cl.context.session.chat_settings)
    try:
        spec = await _run_spec(model, settings, person)
    except HubError as error:
        await cl.ErrorMessage(content=str(error), author="Switchboard").send()
        return
    turn = await prepare_turn(
        message,
        spec=spec,
        hub=hub_client(),
        history=history,
        max_bytes=get_settings().chat_attachment_max_bytes,
        respec=lambda other: _run_spec(other, settings, person),
    )
    if turn is None:
        return
    if turn.spec is not spec:
        spec = turn.spec
        cl.user_session.set(_MODEL_KEY, spec.model)
    # The runtime keeps its own memory of the conversation; what came before its first turn
    # (a conversation copied from a share, or from before it kept one) goes along in case,
    # and so does a reply whose chat process stopped mid-answer (the runtime's memory ends
    # before it).
    started, status = time.perf_counter(), "error"
    try:
        result = await agent_host().run(
            spec=spec,
            user=person,
            conversation_id=memory_key,
            message=turn.content,
            approval=QueryApproval(threshold_bytes=get_settings().query_approval_bytes_for(person)),
            earlier=history[:-1],
            cut_off=cut_off_reply(context[:-1]),
        )
        status = result.status
    except asyncio.CancelledError:
        status = "cancelled"
        raise
    finally:
        kind = "model" if spec.is_model_chat else "agent"
        seconds = time.perf_counter() - started
        chat_metrics().turn(kind, status, seconds)
        logger.info(
            "%s turn (%s) ended %s after %.2f s", kind, spec.slug or spec.model, status, seconds
        )
    await show_controls(message.id)
    if spec.is_model_chat:
        # After the reply, when Chainlit has surely created the thread (it does so in the
        # background at the first message and would overwrite an earlier write).
        await _remember_settings(settings)
