"""The files attached to a chat message, before the model is called: what each is worth in
tokens and how much of it the model gets, said in the chat; what goes to the model with the
message; or why nothing goes.

- A file the chat cannot use (empty, too large, damaged, unknown kind) is refused with the
  reason, and so is an image for a model whose catalog entry says it takes none. A refused
  message's files are not kept.
- When the files do not fit in what is left of the model's context, the chat says so and
  offers what fits (the leading pages of a PDF that do, or a model with a larger context); it
  never cuts a file short by itself.
"""

import asyncio
import html
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import chainlit as cl
from chainlit.data import get_data_layer
from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.element import Element
from chainlit.user import PersistedUser
from openai.types.chat import ChatCompletionMessageParam

from agents.hub_client import HubClient, HubError, ModelInfo
from agents.spec import AgentSpec
from app.attachments import (
    AttachmentRefused,
    Document,
    Picture,
    format_size,
    read_attachment,
    text_tokens,
)
from app.history import ATTACHED_TEXT

__all__ = [
    "ANSWER_TOKENS",
    "TurnInput",
    "attached_content",
    "describe",
    "image_refusal",
    "markdown_text",
    "prepare_turn",
    "room_for",
]

# Room kept for the answer when the run does not set its own maximum.
ANSWER_TOKENS = 1024
OFFER_TIMEOUT_S = 600
_AUTHOR = "Switchboard"
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_{}\[\]()<>#+!|~]")


@dataclass(frozen=True, slots=True)
class TurnInput:
    """What the turn runs and what the model is sent: text, or content parts with images."""

    spec: AgentSpec
    content: str | list[str | dict[str, Any]]
    attached_text: str = ""


@dataclass(frozen=True, slots=True)
class _Read:
    element: Element
    file: Document | Picture
    pages: int = 0  # of a Document: how many leading pages go to the model

    @property
    def tokens(self) -> int:
        if isinstance(self.file, Document):
            return self.file.tokens_of(self.pages)
        return self.file.tokens


def attached_content(
    text: str, files: Sequence[Document | Picture], pages: Sequence[int] = ()
) -> tuple[str | list[str | dict[str, Any]], str]:
    """The message the model gets (its text followed by each document's; images as parts)
    and the documents' text alone. `pages[i]` limits the i-th file when it is paged."""
    blocks: list[str] = []
    images: list[Picture] = []
    for index, file in enumerate(files):
        if isinstance(file, Picture):
            images.append(file)
            continue
        count = pages[index] if index < len(pages) and pages[index] else len(file.pages)
        what = file.kind
        if file.is_paged:
            what += f", pages 1-{count} of {len(file.pages)}"
        name = html.escape(file.name, quote=True)
        blocks.append(f'<attached file="{name}" kind="{what}">\n{file.text_of(count)}\n</attached>')
    attached = "\n\n".join(blocks)
    message = f"{text}\n\n{attached}" if attached else text
    if not images:
        return message, attached
    parts: list[str | dict[str, Any]] = [{"type": "text", "text": message}]
    parts += [{"type": "image_url", "image_url": {"url": image.data_url()}} for image in images]
    return parts, attached


def _model(models: Sequence[ModelInfo], name: str) -> ModelInfo:
    return next((model for model in models if model.id == name), ModelInfo(id=name))


def room_for(
    model: ModelInfo, max_tokens: int | None, history: Sequence[ChatCompletionMessageParam]
) -> int | None:
    """Tokens files may take in a call to `model` after `history` (the conversation with the
    message's own text), keeping room for the answer; None when its context is not known."""
    if model.context_window is None:
        return None
    used = sum(text_tokens(str(item.get("content") or "")) for item in history)
    return model.context_window - (max_tokens or ANSWER_TOKENS) - used


def describe(file: Document | Picture) -> str:
    if isinstance(file, Document):
        count = len(file.pages)
        pages = f", {count} page{'s' if count != 1 else ''}" if file.is_paged else ""
        return f"{file.name}: {file.kind}{pages}, {file.tokens:,} tokens"
    return f"{file.name}: image {file.width}×{file.height}, {file.tokens:,} tokens"


def image_refusal(model: ModelInfo, models: Sequence[ModelInfo], names: Sequence[str]) -> str:
    able = [entry.id for entry in models if entry.image_input]
    hint = f" Models that take images: {', '.join(able)}." if able else ""
    return (
        f"{model.id} does not take images (its catalog entry says so), so {', '.join(names)} "
        f"cannot go to it.{hint}"
    )


def _read_all(elements: Sequence[Element], max_bytes: int) -> tuple[list[_Read], list[str]]:
    read: list[_Read] = []
    refused: list[str] = []
    for element in elements:
        name = element.name or "file"
        try:
            path = Path(str(element.path or ""))
            size = path.stat().st_size if element.path else 0
            if size > max_bytes:
                raise AttachmentRefused(
                    f"{name} is {format_size(size)}; files of at most "
                    f"{format_size(max_bytes)} can be attached."
                )
            content = element.content or b""
            data = path.read_bytes() if element.path else content
            if isinstance(data, str):
                data = data.encode()
            file = read_attachment(name, data, max_bytes=max_bytes)
        except AttachmentRefused as refusal:
            refused.append(str(refusal))
            continue
        except OSError:
            refused.append(f"{name} could not be read from the upload; attach it again.")
            continue
        pages = len(file.pages) if isinstance(file, Document) else 0
        read.append(_Read(element=element, file=file, pages=pages))
    return read, refused


async def _stored(element: Element, *, timeout_s: float = 10.0) -> str | None:
    """The element's stored object key, once Chainlit's background write has made it."""
    layer = get_data_layer()
    if not isinstance(layer, SQLAlchemyDataLayer):
        return None
    # Not get_element: it fails on the rows Chainlit writes for uploads (no props).
    query = 'SELECT "objectKey" FROM elements WHERE "id" = :id'
    for _ in range(math.ceil(timeout_s / 0.05)):
        rows = await layer.execute_sql(query, {"id": element.id})
        if isinstance(rows, list) and rows:
            return str(rows[0].get("objectKey") or "")
        await asyncio.sleep(0.05)
    return None


async def _discard(elements: Sequence[Element]) -> None:
    """A refused message keeps none of its files: neither the rows nor the stored bytes."""
    for element in elements:
        await _stored(element)
        await element.remove()


async def _keep(elements: Sequence[Element]) -> None:
    """Files are stored under their owner's id, which Chainlit reads from the conversation; at
    the first message the conversation may not have its owner yet: store those again."""
    layer, user = get_data_layer(), cl.context.session.user
    if layer is None or not isinstance(user, PersistedUser):
        return
    for element in elements:
        key = await _stored(element)
        if key is not None and not key.startswith(f"{user.id}/"):
            await layer.update_thread(cl.context.session.thread_id, user_id=user.id)
            await layer.delete_element(element.id, cl.context.session.thread_id)
            await layer.create_element(element)


def markdown_text(text: str) -> str:
    """`text` (a file name from outside, say) shown as it is in a Markdown message."""
    return _MARKDOWN_SPECIAL.sub(r"\\\g<0>", text)


def _summary(read: Sequence[_Read], model: str, room: int | None) -> str:
    lines = ["**Attached**", *(f"- {markdown_text(describe(item.file))}" for item in read)]
    total = sum(item.file.tokens for item in read)
    if room is None:
        lines.append(f"\n{model} gets all of it ({total:,} tokens).")
    elif total <= room:
        lines.append(f"\n{model} gets all of it: {total:,} of the {room:,} tokens it has room for.")
    else:
        lines.append(
            f"\n**That does not fit:** {total:,} tokens, and {model} has room for "
            f"{max(room, 0):,} more in this conversation. Nothing was sent."
        )
    return "\n".join(lines)


async def _refuse(text: str, elements: Sequence[Element]) -> None:
    await _discard(elements)
    await cl.ErrorMessage(content=markdown_text(text), author=_AUTHOR).send()


async def prepare_turn(
    message: cl.Message,
    *,
    spec: AgentSpec,
    hub: HubClient,
    history: Sequence[ChatCompletionMessageParam],
    max_bytes: int,
    respec: Callable[[str], Awaitable[AgentSpec]],
) -> TurnInput | None:
    """What the turn sends for `message` and its files, or None when nothing is to be sent
    (a file refused, or the person took no offer); the chat has said why. `history` is the
    conversation with the message's own text (what the context holds already); `respec` gives
    the run spec of a chat with another model."""
    elements = [element for element in message.elements if element.path or element.content]
    if not elements:
        return TurnInput(spec=spec, content=message.content)
    # Reading a long PDF takes a while: not on the loop every conversation of this process uses.
    read, refused = await anyio.to_thread.run_sync(_read_all, elements, max_bytes)
    if refused:
        await _refuse(
            "\n\n".join(refused)
            + "\n\nNothing was sent to the model and no file of this message was kept.",
            elements,
        )
        return None
    try:
        models = await hub.list_models()
    except HubError as error:
        await _refuse(f"The files were not sent: {error}", elements)
        return None
    model = _model(models, spec.model)
    images = [item.file.name for item in read if isinstance(item.file, Picture)]
    if images and not model.image_input:
        await _refuse(
            image_refusal(model, models, images)
            + " Nothing was sent and no file of this message was kept.",
            elements,
        )
        return None
    room = room_for(model, spec.max_tokens, history)
    total = sum(item.tokens for item in read)
    await _keep(elements)
    await cl.Message(content=_summary(read, spec.model, room), author=_AUTHOR).send()
    if room is not None and total > room:
        chosen = await _offer(read, spec, models, room, history, bool(images))
        if chosen is None:
            return None
        spec, read = await _take(chosen, spec, read, respec)
    content, attached = attached_content(
        message.content, [item.file for item in read], [item.pages for item in read]
    )
    await _remember(message, attached)
    return TurnInput(spec=spec, content=content, attached_text=attached)


async def _remember(message: cl.Message, attached: str) -> None:
    """Keep the files' text with the message, so later turns' history still carries it."""
    message.metadata = {**(message.metadata or {}), ATTACHED_TEXT: attached}
    if layer := get_data_layer():
        await layer.update_step(message.to_dict())


@dataclass(frozen=True, slots=True)
class _Choice:
    pages: tuple[str, int] | None = None  # (element id, leading pages)
    model: str | None = None


async def _offer(
    read: Sequence[_Read],
    spec: AgentSpec,
    models: Sequence[ModelInfo],
    room: int,
    history: Sequence[ChatCompletionMessageParam],
    images: bool,
) -> _Choice | None:
    """Ask the person to take what fits; None when they take nothing (or do not answer)."""
    actions: list[cl.Action] = []
    documents = [item for item in read if isinstance(item.file, Document) and item.file.is_paged]
    if documents:
        largest = max(documents, key=lambda item: item.tokens)
        assert isinstance(largest.file, Document)
        others = sum(item.tokens for item in read if item is not largest)
        fitting = largest.file.pages_that_fit(room - others)
        if fitting:
            actions.append(
                cl.Action(
                    name="attach_pages",
                    payload={"element": largest.element.id, "pages": fitting},
                    label=f"Send pages 1-{fitting} of {largest.file.name}"[:200],
                )
            )
    if spec.is_model_chat:
        total = sum(item.tokens for item in read)
        larger = sorted(
            (
                entry
                for entry in models
                if entry.id != spec.model
                and (entry.image_input or not images)
                and (room_there := room_for(entry, spec.max_tokens, history)) is not None
                and room_there >= total
            ),
            key=lambda entry: entry.context_window or 0,
        )
        if larger:
            actions.append(
                cl.Action(
                    name="attach_switch",
                    payload={"model": larger[0].id},
                    label=f"Switch to {larger[0].id} ({larger[0].context_window:,} tokens)",
                )
            )
    if not actions:
        await cl.Message(
            content="Nothing of it fits: attach a smaller file, or fewer files.", author=_AUTHOR
        ).send()
        return None
    actions.append(cl.Action(name="attach_cancel", payload={}, label="Don't send"))
    ask = cl.AskActionMessage(
        content="What should go instead?",
        actions=actions,
        author=_AUTHOR,
        timeout=OFFER_TIMEOUT_S,
    )
    answer = await ask.send()
    if answer is None:
        await cl.Message(
            content=f"No answer within {OFFER_TIMEOUT_S // 60} minutes: nothing was sent.",
            author=_AUTHOR,
        ).send()
        return None
    if answer.get("name") == "attach_cancel":
        return None
    payload = answer.get("payload") or {}
    if answer.get("name") == "attach_pages":
        return _Choice(pages=(str(payload.get("element")), int(payload.get("pages") or 0)))
    return _Choice(model=str(payload.get("model")))


async def _take(
    choice: _Choice,
    spec: AgentSpec,
    read: list[_Read],
    respec: Callable[[str], Awaitable[AgentSpec]],
) -> tuple[AgentSpec, list[_Read]]:
    if choice.model is not None:
        spec = await respec(choice.model)
        if layer := get_data_layer():
            # The conversation goes on with that model, also when it is opened again.
            await layer.update_thread(cl.context.session.thread_id, metadata={"model": spec.model})
        return spec, read
    assert choice.pages is not None
    element_id, pages = choice.pages
    return spec, [
        replace(item, pages=pages) if item.element.id == element_id else item for item in read
    ]
