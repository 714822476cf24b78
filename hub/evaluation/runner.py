"""The background loop that answers the cases of queued and running runs, in every hub process.

Every `eval_poll_interval_s` it looks for runs to work on; for each it claims cases (a result
row per case, see hub/services/eval_runs.py) up to the run's concurrency and answers them.
A run is finished once every case has a done or error result, whichever process answered it.

On the hub's shutdown it stops claiming and gives the cases in flight `SHUTDOWN_GRACE_S` to
finish, so a stop (SIGTERM) loses nothing and sends no case twice; a case cut off by that
deadline is given back, to be sent again. After a crash, a case that was in flight keeps its
`started` row, and is claimed again once the row is older than `abandon_after_s`: only then
can a case reach the target twice. An agent's case may take as long as its time limit, so an
agent run's claims count as abandoned only that much later.

Agent versions' loops run here too (hub/evaluation/agent_answers.py), with one tracer that
writes their traces to the database.

Each poll also decides the regression gate's checks whose two runs are over
(hub/evaluation/gates.py); when that moves production, this process's calls by name read it
at once.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TypeVar

import anyio
from sqlalchemy import Engine
from sqlmodel import Session

from agents.hub_client import HubClient
from agents.runtime.approval import QueryApproval
from agents.spec import AgentSpec
from agents.tracing.tracer import Tracer
from hub.core.config import EVALUATION_SERVICE_NAME
from hub.core.errors import InvalidError
from hub.evaluation.agent_answers import AgentTarget, answer_agent_case
from hub.evaluation.agent_calls import TraceWriter
from hub.evaluation.case_answers import RunTarget, answer_case
from hub.evaluation.checks import prepare_checks
from hub.evaluation.gates import decide_check
from hub.evaluation.judge_prompts import JudgeVersions
from hub.gateway.prompt_calls import PromptResolver
from hub.gateway.prompt_tools import PromptTools
from hub.gateway.proxy import Gateway
from hub.mcp.registry import McpRegistry
from hub.models.actor import Actor
from hub.models.agent import Agent, AgentVersion
from hub.models.evaluation import Check, EvalCase, EvalResult, EvalRun, ResultStatus
from hub.models.prompt import PromptVersion
from hub.models.service import utcnow
from hub.services import agents as agent_store
from hub.services import eval_gates as gates_store
from hub.services import eval_runs as store
from hub.services import prompts as prompt_store
from hub.services.service_accounts import ServiceIdentity

__all__ = ["SHUTDOWN_GRACE_S", "EvalRunner"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
SHUTDOWN_GRACE_S = 10.0
# The address the agent runtime is given for the hub: its calls never leave this process.
_IN_PROCESS_URL = "http://hub.in-process"

Target = RunTarget | AgentTarget


class EvalRunner:
    def __init__(
        self,
        *,
        engine: Engine,
        gateway: Gateway,
        registry: McpRegistry,
        resolver: PromptResolver,
        service_id: int,
        poll_interval_s: float,
        abandon_after_s: float,
        query_approval_bytes: int,
    ) -> None:
        self._engine = engine
        self._gateway = gateway
        self._tools = PromptTools(gateway, registry, engine)
        self._resolver = resolver
        self._service_id = service_id
        self._poll_interval_s = poll_interval_s
        self._abandon_after = timedelta(seconds=abandon_after_s)
        self._approval = QueryApproval(threshold_bytes=query_approval_bytes)
        self._hub = HubClient(hub_url=_IN_PROCESS_URL, token=EVALUATION_SERVICE_NAME)
        self._tracer = Tracer(
            _IN_PROCESS_URL, EVALUATION_SERVICE_NAME, transport=TraceWriter(self._engine)
        )
        self._workers: dict[int, asyncio.Task[None]] = {}
        # Results this process is answering: never claimed again as abandoned.
        self._in_flight: set[int] = set()
        self._stopping = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._tracer.start()
        self._poller = asyncio.create_task(self._poll())

    async def close(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Stop claiming; wait up to `grace_s` for the cases in flight, then cut them off."""
        self._stopping.set()
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        workers = list(self._workers.values())
        if workers:
            _, late = await asyncio.wait(workers, timeout=grace_s)
            for worker in late:
                worker.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._tracer.close()
        await self._hub.aclose()

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    async def _pause(self) -> None:
        """Wait one poll interval, or less when the hub stops."""
        try:
            await asyncio.wait_for(self._stopping.wait(), self._poll_interval_s)
        except TimeoutError:
            pass

    async def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                run_ids = await self._db(lambda s: store.active_run_ids(session=s))
            except Exception:
                logger.exception("Could not look for evaluation runs")
                run_ids = []
            for run_id in run_ids:
                if run_id not in self._workers:
                    self._workers[run_id] = asyncio.create_task(self._work(run_id))
            await self._decide_gate_checks()
            await self._pause()

    async def _decide_gate_checks(self) -> None:
        try:
            check_ids = await self._db(lambda s: gates_store.running_check_ids(session=s))
            for check_id in check_ids:
                if await self._db(partial(decide_check, check_id=check_id)):
                    self._resolver.production_changed()
        except Exception:
            logger.exception("Could not decide the gate checks")

    def _load(
        self, session: Session, run_id: int
    ) -> tuple[EvalRun, int, PromptVersion | tuple[Agent, AgentVersion], JudgeVersions] | str:
        """The run, its set version's id, its prompt version (or its agent and agent version)
        and its judge prompts' versions, or why they are gone."""
        run = store.get_run(session=session, run_id=run_id)
        assert run is not None
        set_version = store.set_version_of(session=session, run=run)
        version: PromptVersion | tuple[Agent, AgentVersion] | None = None
        if run.target_kind == "agent":
            agent = agent_store.get_agent(session=session, slug=run.target)
            found = agent and agent_store.get_version(
                session=session, agent=agent, number=run.target_version
            )
            version = (agent, found) if agent and found else None
        else:
            prompt = prompt_store.get_prompt(session=session, name=run.target)
            if prompt is not None:
                version = prompt_store.get_version(
                    session=session, prompt=prompt, number=run.target_version
                )
        if set_version is None or set_version.id is None or not version:
            return (
                f"The test set's v{run.set_version} or {run.target} v{run.target_version} is gone."
            )
        judges: JudgeVersions = {}
        for check in [Check.model_validate(c) for c in run.checks]:
            name, number = check.judge_prompt, check.judge_version
            if name is None or number is None:
                continue
            judge = prompt_store.get_prompt(session=session, name=name)
            found_judge = judge and prompt_store.get_version(
                session=session, prompt=judge, number=number
            )
            if found_judge:
                judges[(name, number)] = found_judge
        return run, set_version.id, version, judges

    def _agent_spec(
        self, session: Session, run: EvalRun, agent: Agent, version: AgentVersion
    ) -> AgentSpec:
        service = self._service(run)
        actor = Actor(kind="service", id=str(service.id), name=service.name, team=service.team)
        return agent_store.run_spec(
            session=session,
            agent=agent,
            source=version,
            models=self._gateway.catalog,
            actor=actor,
        )

    def _service(self, run: EvalRun) -> ServiceIdentity:
        return ServiceIdentity(
            id=self._service_id, name=EVALUATION_SERVICE_NAME, team=run.team, is_admin=False
        )

    async def _target(self, run_id: int) -> tuple[Target, int] | str:
        """What the run's cases are answered with and its set version's id, or why not."""
        loaded = await self._db(lambda s: self._load(s, run_id))
        if isinstance(loaded, str):
            return loaded
        run, version_id, version, judges = loaded
        try:
            checks = prepare_checks(
                [Check.model_validate(c) for c in run.checks], self._gateway.catalog, judges
            )
        except InvalidError as refusal:
            return refusal.message
        service = self._service(run)
        if isinstance(version, PromptVersion):
            prompt_target = RunTarget(
                prompt=run.target,
                version=version,
                checks=checks,
                service=service,
                gateway=self._gateway,
                tools=self._tools,
            )
            return prompt_target, version_id
        agent, agent_version = version
        spec = await self._db(lambda s: self._agent_spec(s, run, agent, agent_version))
        assert run.id is not None
        agent_target = AgentTarget(
            run_id=run.id,
            spec=spec,
            checks=checks,
            service=service,
            gateway=self._gateway,
            registry=self._tools.registry,
            hub=self._hub,
            tracer=self._tracer,
            approval=self._approval,
        )
        return agent_target, version_id

    async def _work(self, run_id: int) -> None:
        answering: set[asyncio.Task[None]] = set()
        try:
            found = await self._target(run_id)
            if isinstance(found, str):
                await self._db(lambda s: store.fail_run(session=s, run_id=run_id, message=found))
                return
            target, version_id = found
            await self._db(lambda s: store.start_run(session=s, run_id=run_id))
            while not self._stopping.is_set():
                run = await self._db(lambda s: store.get_run(session=s, run_id=run_id))
                if run is None or run.status not in store.ACTIVE:
                    break
                free = run.concurrency - len(answering)
                claimed = await self._claim(run, version_id, free, _patience(target))
                answering |= {
                    asyncio.create_task(self._answer(target, result, case))
                    for result, case in claimed
                }
                if answering:
                    done, _ = await asyncio.wait(
                        answering, timeout=self._poll_interval_s, return_when="FIRST_COMPLETED"
                    )
                    answering -= done
                elif await self._finished(run):
                    break
                else:
                    # The rest are being answered by another hub process.
                    await self._pause()
            if answering:
                await asyncio.wait(answering)
        except asyncio.CancelledError:
            for task in answering:
                task.cancel()
            await asyncio.gather(*answering, return_exceptions=True)
            raise
        except Exception:
            logger.exception("The evaluation run %s stopped; it is taken up again", run_id)
            # Before the next poll starts a worker again, so the run keeps to its concurrency.
            if answering:
                await asyncio.wait(answering)
        finally:
            self._workers.pop(run_id, None)

    async def _finished(self, run: EvalRun) -> bool:
        return await self._db(lambda s: store.finish_if_complete(session=s, run=run))

    async def _claim(
        self, run: EvalRun, version_id: int, free: int, patience: timedelta
    ) -> list[tuple[EvalResult, EvalCase]]:
        if free <= 0:
            return []
        claimed = await self._db(
            lambda s: store.claim_new_cases(session=s, run=run, version_id=version_id, limit=free)
        )
        if claimed:
            return claimed
        assert run.id is not None
        run_id = run.id
        older_than = utcnow() - self._abandon_after - patience
        skip = set(self._in_flight)
        return await self._db(
            lambda s: store.claim_abandoned(
                session=s, run_id=run_id, older_than=older_than, skip=skip, limit=free
            )
        )

    async def _answer(self, target: Target, result: EvalResult, case: EvalCase) -> None:
        assert result.id is not None
        result_id = result.id
        self._in_flight.add(result_id)
        try:
            try:
                values = await (
                    answer_case(target, case)
                    if isinstance(target, RunTarget)
                    else answer_agent_case(target, case)
                )
            except asyncio.CancelledError:
                await self._db(lambda s: store.release_result(session=s, result_id=result_id))
                raise
            except Exception:
                logger.exception("Answering case %s of run %s failed", case.id, result.run_id)
                values = {
                    "status": ResultStatus.error.value,
                    "error": "The hub failed on this case; its log says why.",
                }
            await self._db(
                lambda s: store.save_result(session=s, result_id=result_id, values=values)
            )
        finally:
            self._in_flight.discard(result_id)


def _patience(target: Target) -> timedelta:
    """How much longer than a prompt's case one of the target's cases may take: an agent's
    loop may run for its whole time limit."""
    if isinstance(target, AgentTarget):
        return timedelta(seconds=target.spec.timeout_s)
    return timedelta()
