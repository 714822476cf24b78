"""Live judges at work in every hub process: a sample of a prompt's calls by name is judged
after it was answered.

Which prompts are bound to a judge is read from the database every `live_judge_refresh_s`
(and at once after a change made through this process), so a call pays no database read for
it. A call is picked with probability `share` (a random draw); once its answer is complete
(streamed or not), its variables and answer go to a bounded queue in memory (full: dropped
and counted). A few workers take them in turn: each counts the call against the prompt's
daily cap in the database (over it: skipped and counted), asks the judge through the gateway
as the service `evaluation` with the prompt's team (counted under the judge prompt), and
keeps the verdict.
"""

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
from sqlalchemy import Engine
from sqlmodel import Session

from hub.core.config import EVALUATION_SERVICE_NAME
from hub.evaluation.judge_prompts import judge_answer, load_judge_version
from hub.gateway.proxy import Gateway
from hub.models.live_judge import SHORT_ANSWER_CHARS, LiveScore, ProcessCounts
from hub.models.prompt import PromptVersion
from hub.models.service import utcnow
from hub.services import live_judges as store
from hub.services.service_accounts import ServiceIdentity

__all__ = ["LIVE_JUDGE_WORKERS", "LiveScorer"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
# Judge calls in flight at once per hub process.
LIVE_JUDGE_WORKERS = 4


@dataclass(frozen=True, slots=True)
class _Binding:
    judge: str
    version: int
    pass_score: float
    share: float
    team: str


@dataclass(frozen=True, slots=True)
class _Sampled:
    prompt: str
    version: int
    variables: dict[str, str]
    answer: str
    binding: _Binding


class LiveScorer:
    def __init__(
        self,
        *,
        engine: Engine,
        gateway: Gateway,
        service_id: int,
        refresh_s: float,
        queue_size: int,
    ) -> None:
        self._engine = engine
        self._gateway = gateway
        self._service_id = service_id
        self._refresh_s = refresh_s
        self._queue: asyncio.Queue[_Sampled] = asyncio.Queue(maxsize=queue_size)
        self._bindings: dict[str, _Binding] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._queued = self._dropped = self._over_cap = 0

    async def start(self) -> None:
        await self.reload()
        self._tasks = [asyncio.create_task(self._refresh())] + [
            asyncio.create_task(self._work()) for _ in range(LIVE_JUDGE_WORKERS)
        ]

    async def close(self) -> None:
        """Stop; the sampled answers still queued are not judged."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def counts(self) -> ProcessCounts:
        return ProcessCounts(queued=self._queued, dropped=self._dropped, over_cap=self._over_cap)

    async def reload(self) -> None:
        """Read every prompt's binding (after a change, so this process's next call sees it)."""
        self._bindings = await self._db(self._read)

    def pick(
        self, prompt: str, version: int, variables: dict[str, str]
    ) -> Callable[[str], None] | None:
        """For a call of `prompt` served with `version`: None, or (with the bound share's
        chance) what takes its answer's text to the queue."""
        binding = self._bindings.get(prompt)
        if binding is None or random.random() >= binding.share:
            return None

        def queue(answer: str) -> None:
            if not answer:
                return
            try:
                self._queue.put_nowait(_Sampled(prompt, version, variables, answer, binding))
            except asyncio.QueueFull:
                self._dropped += 1
            else:
                self._queued += 1

        return queue

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    def _read(self, session: Session) -> dict[str, _Binding]:
        return {
            b.prompt: _Binding(b.judge_prompt, b.judge_version, b.pass_score, b.share, team)
            for b, team in store.all_bindings(session=session)
        }

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.reload()
            except Exception:  # the loop outlives a failed read (a database away)
                logger.exception("live judges: could not read the bindings")

    async def _work(self) -> None:
        while True:
            sampled = await self._queue.get()
            try:
                await self._score(sampled)
            except Exception:  # the worker outlives one call it could not judge
                logger.exception("live judges: could not judge a call of %s", sampled.prompt)

    async def _score(self, sampled: _Sampled) -> None:
        binding = sampled.binding

        def take(session: Session) -> PromptVersion | None:
            day = utcnow().date().isoformat()
            if not store.take_cap(
                session=session, prompt=sampled.prompt, judge_prompt=binding.judge, day=day
            ):
                return None
            return load_judge_version(session, binding.judge, binding.version)[1]

        version = await self._db(take)
        if version is None:
            self._over_cap += 1
            return
        service = ServiceIdentity(
            id=self._service_id, name=EVALUATION_SERVICE_NAME, team=binding.team, is_admin=False
        )
        verdict = await judge_answer(
            self._gateway,
            service,
            binding.judge,
            version,
            dict(sampled.variables),
            None,
            sampled.answer,
            binding.pass_score,
        )
        score = LiveScore(
            prompt=sampled.prompt,
            version=sampled.version,
            judge_prompt=binding.judge,
            judge_version=binding.version,
            score=verdict.score,
            passed=verdict.passed,
            reason=verdict.reason[:2000],
            answer=sampled.answer[:SHORT_ANSWER_CHARS],
            cost_usd=verdict.cost_usd,
        )
        await self._db(lambda session: store.add_score(session=session, score=score))
