"""Editing a message, regenerating an answer (with the same or another model or agent), and
stepping through the branches that leaves, in the chat. The tree of turns is app/branches.py.

Chainlit's own edit deletes the later messages from storage and rewrites the edited one; here
an edit (and a regeneration) starts a new message as a sibling of the old one instead, so the
old branch stays stored, and only the page forgets it. Under each answer: "‹ 2/3 ›" to step
through the versions of its turn, "Regenerate" and "Regenerate with…".
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import chainlit as cl
from chainlit.chat_context import chat_context
from chainlit.config import config
from chainlit.context import context, init_ws_context
from chainlit.data import get_data_layer
from chainlit.server import app as chainlit_app
from chainlit.server import sio
from chainlit.session import WebsocketSession
from chainlit.types import MessagePayload, ThreadDict

from app.branch_routes import add_branch_routes
from app.branches import TurnTree, turns_of
from app.data_layer import SwitchboardDataLayer
from app.sharing import SHARE_COMMAND

__all__ = [
    "REGENERATE",
    "REGENERATE_WITH",
    "SWITCH_BRANCH",
    "add_branch_chat",
    "show_controls",
    "show_thread_controls",
    "start_turn",
]

logger = logging.getLogger(__name__)

REGENERATE = "branch_regenerate"
REGENERATE_WITH = "branch_regenerate_with"
SWITCH_BRANCH = "branch_switch"
_CHOOSE_PROFILE = "branch_choose_profile"
# Seconds "Regenerate with…" waits for a choice.
CHOICE_TIMEOUT_S = 300
_CONTROL_IDS = uuid.UUID("5b0e3c4e-1d2f-4a7b-9c35-0f7f1e9b2a61")
_GONE = "That message is no longer shown here: reload the page and try again."


def _layer() -> SwitchboardDataLayer | None:
    layer = get_data_layer()
    return layer if isinstance(layer, SwitchboardDataLayer) else None


def _shown_path() -> list[str]:
    """The person's messages on the page, oldest first."""
    return [
        message.id
        for message in chat_context.get()
        if message.type == "user_message" and message.command != SHARE_COMMAND
    ]


async def _record_path(layer: SwitchboardDataLayer, thread_id: str) -> TurnTree:
    tree = await layer.turn_tree(thread_id)
    tree.follow(_shown_path())
    await layer.save_turn_tree(thread_id, tree)
    return tree


async def start_turn(message: cl.Message) -> str:
    """Record `message` as the newest turn of the branch on the page; the key of its branch's
    agent memory."""
    thread_id = context.session.thread_id
    layer = _layer()
    if layer is None:
        return thread_id
    tree = await _record_path(layer, thread_id)
    return tree.memory_key(thread_id, message.id)


def _controls(tree: TurnTree, turn: str) -> list[tuple[str, str, str, str]]:
    """(action, turn it acts on, label, tooltip) for the buttons under an answer to `turn`."""
    siblings = tree.siblings(turn)
    at, count = siblings.index(turn), len(siblings)
    controls: list[tuple[str, str, str, str]] = []
    if count > 1:
        if at > 0:
            controls.append((SWITCH_BRANCH, siblings[at - 1], "‹", "Previous version"))
        controls.append((SWITCH_BRANCH, turn, f"{at + 1}/{count}", "Versions of this answer"))
        if at < count - 1:
            controls.append((SWITCH_BRANCH, siblings[at + 1], "›", "Next version"))
    return [
        *controls,
        (REGENERATE, turn, "Regenerate", "Answer this message again; this answer stays a version"),
        (REGENERATE_WITH, turn, "Regenerate with…", "Answer it again with another model or agent"),
    ]


async def _send_controls(tree: TurnTree, turn: str, answer_id: str) -> None:
    for name, target, label, tooltip in _controls(tree, turn):
        # The same id for the same button of an answer: sent again (the conversation opening
        # twice, a branch shown again), it replaces the one the page has.
        action_id = str(uuid.uuid5(_CONTROL_IDS, f"{answer_id}/{tooltip}"))
        action = cl.Action(
            name=name, payload={"turn": target}, label=label, tooltip=tooltip, id=action_id
        )
        action.forId = answer_id
        await action.remove()
        await action.send(for_id=answer_id)


async def show_controls(turn: str) -> None:
    """Under the answer to `turn` (the message just answered): its buttons."""
    layer, messages = _layer(), chat_context.get()
    ids = [message.id for message in messages]
    if layer is None or turn not in ids:
        return
    answer = None
    for message in messages[ids.index(turn) + 1 :]:
        if message.type == "user_message":
            break
        if message.type == "assistant_message":
            answer = message
    if answer is not None:
        await _send_controls(await layer.turn_tree(context.session.thread_id), turn, answer.id)


async def show_thread_controls(thread: ThreadDict) -> None:
    """Under each answer of a conversation as it opens: its buttons."""
    tree = TurnTree.from_metadata(thread.get("metadata"))
    for turn, steps in turns_of(thread["steps"]):
        answers = [step for step in steps if step.get("type") == "assistant_message"]
        if turn is not None and answers:
            await _send_controls(tree, turn["id"], answers[-1]["id"])


def _run_turn(message: cl.Message) -> None:
    """Answer `message` as if it had just been sent (the stop button stops it)."""

    async def answer() -> None:
        await context.emitter.task_start()
        try:
            if config.code.on_message:
                await config.code.on_message(message)
        except asyncio.CancelledError:
            pass
        finally:
            await context.emitter.task_end()

    context.session.current_task = asyncio.create_task(answer())


async def _branch_from(turn: str, content: str) -> bool:
    """A new version of the message `turn` saying `content`, answered: the page forgets `turn`
    and what came after it, which stay stored as the branch before."""
    layer, thread_id = _layer(), context.session.thread_id
    messages = chat_context.get()
    ids = [message.id for message in messages]
    if layer is None or turn not in ids or messages[ids.index(turn)].type != "user_message":
        await context.emitter.send_toast(_GONE, "error")
        return False
    if not content.strip():
        await context.emitter.send_toast("A message needs some text.", "error")
        return False
    # Turns from before the tree was kept join it now, so that the old branch stays one.
    await _record_path(layer, thread_id)
    original = messages[ids.index(turn)]
    for message in messages[ids.index(turn) :]:
        chat_context.remove(message)
    stored = await layer.get_all_user_threads(thread_id=thread_id)
    for step in stored[0]["steps"] if stored else []:
        if str(step.get("createdAt") or "") >= str(original.created_at or ""):
            await context.emitter.delete_step(step)
    await context.emitter.delete_step(original.to_dict())
    again = cl.Message(content=content, author=original.author, type="user_message")
    await again.send()
    # Known to the tree before it is answered, so that it stays on its branch even if the
    # answer fails.
    await _record_path(layer, thread_id)
    _run_turn(again)
    return True


async def _edit_message(sid: str, payload: MessagePayload) -> None:
    """Chainlit's edit, as a new version of the message (the old one stays a branch)."""
    init_ws_context(WebsocketSession.require(sid))
    edited = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(edited, dict):
        await context.emitter.send_toast(_GONE, "error")
        return
    await _branch_from(str(edited.get("id") or ""), str(edited.get("output") or ""))


def _turn_of(action: cl.Action) -> str:
    turn = action.payload.get("turn") if isinstance(action.payload, dict) else None
    return turn if isinstance(turn, str) else ""


def _content_of(turn: str) -> str | None:
    for message in chat_context.get():
        if message.id == turn and message.type == "user_message":
            return message.content
    return None


async def _show_branch(layer: SwitchboardDataLayer, thread_id: str) -> None:
    """Redraw the page with the branch now chosen, and refill the chat's context with it."""
    stored = await layer.get_all_user_threads(thread_id=thread_id)
    for step in reversed(stored[0]["steps"] if stored else []):
        await context.emitter.delete_step(step)
    chat_context.clear()
    thread = await layer.get_thread(thread_id)
    if thread is None:
        return
    for step in thread["steps"]:
        await context.emitter.send_step(step)
        if "message" in step["type"]:
            chat_context.add(cl.Message.from_dict(step))
    for element in thread.get("elements") or []:
        await context.emitter.send_element(element)
    await show_thread_controls(thread)


Profiles = Callable[[], Awaitable[list[cl.ChatProfile]]]


def add_branch_chat(*, profiles: Profiles, model_key: str) -> None:
    """Editing, regenerating and switching branches in the chat, and the route to choose a
    branch (app/branch_routes.py). `profiles` are the models and agents the person may pick
    from; `model_key` is where the chat keeps the one it talks to."""
    sio.on("edit_message", handler=_edit_message)
    add_branch_routes(chainlit_app)

    @cl.action_callback(REGENERATE)
    async def regenerate(action: cl.Action) -> None:
        turn = _turn_of(action)
        await _branch_from(turn, _content_of(turn) or "")

    @cl.action_callback(REGENERATE_WITH)
    async def regenerate_with(action: cl.Action) -> None:
        turn = _turn_of(action)
        content = _content_of(turn)
        if content is None:
            await context.emitter.send_toast(_GONE, "error")
            return
        current = cl.user_session.get(model_key)
        choices = {
            profile.name: profile.display_name or profile.name
            for profile in await profiles()
            if profile.name != current
        }
        if not choices:
            await context.emitter.send_toast("There is no other model or agent to ask.", "info")
            return
        ask = cl.AskActionMessage(
            content="Regenerate the answer with:",
            actions=[
                cl.Action(name=_CHOOSE_PROFILE, payload={"profile": name}, label=label)
                for name, label in choices.items()
            ],
            author="Switchboard",
            timeout=CHOICE_TIMEOUT_S,
        )
        answer: Any = await ask.send()
        await ask.remove()
        chosen = (answer or {}).get("payload", {}).get("profile")
        if chosen not in choices:
            return
        # The branch goes on with the model or agent picked.
        cl.user_session.set(model_key, chosen)
        await _branch_from(turn, content)

    @cl.action_callback(SWITCH_BRANCH)
    async def switch_branch(action: cl.Action) -> None:
        layer, thread_id = _layer(), context.session.thread_id
        turn = _turn_of(action)
        tree = await layer.turn_tree(thread_id) if layer is not None else TurnTree()
        if layer is None or turn not in tree.parents:
            await context.emitter.send_toast(_GONE, "error")
            return
        tree.choose(turn)
        await layer.save_turn_tree(thread_id, tree)
        await _show_branch(layer, thread_id)
