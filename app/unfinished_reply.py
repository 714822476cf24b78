"""A reply stored while it streams: a chat process that stops mid-answer loses at most the
last second of it, and the conversation shows what came, with a note that it was cut off.

At most one write a second per streaming reply: the first stores the step (marked cut off,
its text ending with the note), each later one is a single UPDATE of its text. The end of the
turn sends the reply as usual, which stores it whole, without the mark and the note.
"""

import time
from typing import Protocol, runtime_checkable

import chainlit as cl
from chainlit.data.base import BaseDataLayer
from chainlit.step import StepDict
from chainlit.utils import utc_now

from app.history import CUT_OFF_MARKER, with_cut_off_note

__all__ = ["STORE_EVERY_S", "UnfinishedReply"]

STORE_EVERY_S = 1.0


@runtime_checkable
class _StepStore(Protocol):
    """What of the chat's data layer (`SwitchboardDataLayer`, which imports the chat's
    modules) this needs."""

    async def create_step(self, step_dict: StepDict) -> None: ...

    async def update_step_output(self, step_id: str, output: str) -> None: ...


class UnfinishedReply:
    """Stores `reply` in `layer` as it streams, every `every_s` seconds at most; call
    `streamed()` after each token."""

    def __init__(
        self, reply: cl.Message, layer: BaseDataLayer | None, *, every_s: float = STORE_EVERY_S
    ) -> None:
        self._reply = reply
        self._layer: _StepStore | None = layer if isinstance(layer, _StepStore) else None
        self._every_s = every_s
        # The person's message was stored as the turn began: the first second counts from it.
        self._stored_at = time.monotonic()
        self._stored = False

    async def streamed(self) -> None:
        now = time.monotonic()
        layer = self._layer
        if layer is None or now - self._stored_at < self._every_s:
            return
        self._stored_at = now
        text = with_cut_off_note(self._reply.content)
        if self._stored:
            await layer.update_step_output(self._reply.id, text)
            return
        # Sent at the end, the reply gets its own time then, as a reply that ends always has.
        created = utc_now()
        step = self._reply.to_dict() | {
            "output": text,
            "streaming": False,
            "createdAt": created,
            "start": created,
            "end": created,
            "metadata": {**(self._reply.metadata or {}), CUT_OFF_MARKER: True},
        }
        await layer.create_step(step)
        self._stored = True
