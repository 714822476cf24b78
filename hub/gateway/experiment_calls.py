"""A prompt's call in an experiment: the unit's arm is served, the other arm answers in the
background, and the call is recorded with whether the two answers differ: their trimmed texts
are not the same and, when the experiment has a judge, the judge does not answer that they
say the same (it is only asked about texts that are not the same).

The arm comes from a stable hash of (experiment, unit), so a unit always gets the same arm.
Which experiment runs on which prompt is kept in this process for at most
EXPERIMENTS_TTL_S, read for every prompt at once: a call pays no database read for it.
"""

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import orjson
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.responses import Response

from hub.core.errors import Refusal
from hub.gateway.chat_request import ChatRequest
from hub.gateway.errors import GatewayError
from hub.gateway.event_stream import EventStreamResponse
from hub.gateway.proxy import Gateway
from hub.models.experiment import SHORT_TEXT_CHARS, ExperimentCall, ShadowStatus
from hub.services import experiments as store
from hub.services.service_accounts import ServiceIdentity

__all__ = [
    "EXPERIMENTS_TTL_S",
    "JUDGE_SYSTEM",
    "ActiveExperiment",
    "ExperimentResolver",
    "ServedCall",
    "ShadowCalls",
    "answer_text",
    "arm_of",
    "judge_messages",
    "stream_text",
    "when_streamed",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

# As long as a version served by name is kept (PRODUCTION_TTL_S).
EXPERIMENTS_TTL_S = 0.5
JUDGE_SYSTEM = (
    "You compare two answers a prompt gave to the same request. Reply with one word: SAME "
    "when they say the same thing (wording aside), DIFFERENT when they do not."
)


@dataclass(frozen=True, slots=True)
class ActiveExperiment:
    id: int
    version_a: int
    version_b: int
    split: float
    # The catalog model that tells whether two different texts say the same; None: exact.
    judge_model: str | None = None

    def version_of(self, arm: str) -> int:
        return self.version_b if arm == "b" else self.version_a


@dataclass(frozen=True, slots=True)
class ServedCall:
    """A call in an experiment as it was served: its unit, the arm and the answer's text."""

    experiment: ActiveExperiment
    service: ServiceIdentity
    unit: str
    arm: str
    text: str


def arm_of(experiment_id: int, unit: str, split: float) -> str:
    """ "b" when the hash of (experiment, unit), read as a number in [0, 1), is below `split`."""
    digest = hashlib.sha256(f"{experiment_id}:{unit}".encode()).digest()
    return "b" if int.from_bytes(digest[:8], "big") / 2**64 < split else "a"


def stream_text(events: bytes) -> str:
    """The text of a streamed chat completion's events: its first choice's deltas joined."""
    parts: list[str] = []
    for line in events.splitlines():
        if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
            continue
        try:
            choices = orjson.loads(line[5:]).get("choices") or []
            content = choices[0].get("delta", {}).get("content") if choices else None
        except (orjson.JSONDecodeError, AttributeError, IndexError):
            continue
        if isinstance(content, str):
            parts.append(content)
    return "".join(parts)


def when_streamed(response: Response, done: Callable[[str], None]) -> Response:
    """`response`, a streamed answer, calling `done` with its text once the whole stream has
    been relayed (never when it stops early, as when the client goes away)."""
    if not isinstance(response, EventStreamResponse):
        # Answered whole (a prompt with tools): its events are in the body already.
        done(stream_text(bytes(response.body)))
        return response
    pieces = response.pieces

    async def relayed() -> AsyncGenerator[tuple[bytes, bool], None]:
        seen: list[bytes] = []
        try:
            async for piece, last in pieces:
                seen.append(piece)
                if last:
                    done(stream_text(b"".join(seen)))
                yield piece, last
                if last:
                    return
            done(stream_text(b"".join(seen)))
        finally:
            await pieces.aclose()

    response.pieces = relayed()
    return response


def answer_text(response: Response) -> str:
    """The text of a non-streamed chat completion's first choice ("" when it has none)."""
    try:
        answer = orjson.loads(bytes(response.body))
        content = answer["choices"][0]["message"].get("content")
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return ""
    return content if isinstance(content, str) else ""


class ExperimentResolver:
    """The running experiment of each prompt, read at most every EXPERIMENTS_TTL_S (one query
    for every prompt); a start or stop made through this process (`changed`) is seen by its
    next call. Used from the event loop only."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._by_prompt: dict[str, ActiveExperiment] = {}
        self._expires = 0.0
        self._changes = 0

    def changed(self) -> None:
        self._changes += 1
        self._expires = 0.0

    async def running(self, prompt: str) -> ActiveExperiment | None:
        started = time.monotonic()
        if started >= self._expires:
            changes = self._changes
            found = await anyio.to_thread.run_sync(self._read)
            self._by_prompt = found
            if changes == self._changes:
                self._expires = started + EXPERIMENTS_TTL_S
        return self._by_prompt.get(prompt)

    def _read(self) -> dict[str, ActiveExperiment]:
        with Session(self._engine) as session:
            return {
                e.prompt: ActiveExperiment(
                    e.id,
                    e.version_a,
                    e.version_b,
                    e.split,
                    e.judge_model if e.differ == "judge" else None,
                )
                for e in store.running_experiments(session=session)
                if e.id is not None
            }


def judge_messages(first: str, second: str) -> list[dict[str, str]]:
    user = f"Answer 1:\n{first.strip()}\n\nAnswer 2:\n{second.strip()}"
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def _hash(text: str) -> str:
    return hashlib.sha256(text.strip().encode()).hexdigest()


class ShadowCalls:
    """Records experiment calls and asks the arm not served in background tasks."""

    def __init__(self, engine: Engine, gateway: Gateway) -> None:
        self._engine = engine
        self._gateway = gateway
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, served: ServedCall, other_answer: Callable[[], Awaitable[Response]]) -> None:
        task = asyncio.create_task(self._record(served, other_answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop the answers still being asked for; their calls stay pending."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    async def _record(
        self, served: ServedCall, other_answer: Callable[[], Awaitable[Response]]
    ) -> None:
        experiment, arm, served_text = served.experiment, served.arm, served.text
        served_hash, short = _hash(served_text), served_text[:SHORT_TEXT_CHARS]
        made = ExperimentCall(experiment_id=experiment.id, unit=served.unit, arm=arm)
        if arm == "a":
            made.hash_a, made.text_a = served_hash, short
        else:
            made.hash_b, made.text_b = served_hash, short
        call = await self._db(lambda s: store.record_call(session=s, call=made))
        assert call.id is not None
        call_id = call.id
        if not await self._db(lambda s: store.take_budget(session=s, experiment_id=experiment.id)):
            changes: dict[str, object] = {"shadow": ShadowStatus.over_budget.value}
        else:
            other = "a" if arm == "b" else "b"
            try:
                other_text = answer_text(await other_answer())
                differs = _hash(other_text) != served_hash
                if differs and experiment.judge_model is not None:
                    differs = await self._judged_different(served, other_text)
            except (GatewayError, Refusal) as failed:
                logger.warning("experiment %s: the other arm failed: %s", experiment.id, failed)
                changes = {"shadow": ShadowStatus.failed.value}
            else:
                changes = {
                    "shadow": ShadowStatus.answered.value,
                    f"hash_{other}": _hash(other_text),
                    f"text_{other}": other_text[:SHORT_TEXT_CHARS],
                    "differs": differs,
                }
        await self._db(lambda s: store.finish_call(session=s, call_id=call_id, changes=changes))

    async def _judged_different(self, served: ServedCall, other_text: str) -> bool:
        """The judge's verdict on two texts that are not the same: different unless it answers
        SAME (an answer it could not give clearly counts as different, so the call stays an
        exposure)."""
        model = served.experiment.judge_model or ""
        body = {
            "model": model,
            "messages": judge_messages(served.text, other_text),
            "temperature": 0,
            "max_tokens": 5,
            "stream": False,
        }
        request = ChatRequest(model=model, body=body, stream=False, client_wants_usage=False)
        verdict = answer_text(await self._gateway.complete(service=served.service, request=request))
        return not verdict.strip().upper().startswith("SAME")
