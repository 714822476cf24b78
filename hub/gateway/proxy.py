"""Forwarding a chat completion to a deployment that answers, and accounting for it.

Each model's deployments are tried in turn (regions), skipping those whose circuit breaker is
open; a failure a retry can fix is retried with backoff, up to the model's attempt count and
the request's deadline; when every deployment of a model fails, its fallback models are
tried in order. The answer names the model that gave it (`model` field, x-switchboard-model).

Response bytes pass through; the stream is only split into SSE events to read the usage
event (and drop it when the client did not ask for usage, since the gateway always asks the
upstream for it to bill the call).
"""

import asyncio
import math
import time

import aiohttp
import orjson
from starlette.responses import Response

from hub.core.metrics import GatewayMetrics
from hub.gateway.attempt import Answer, Failure, call_deployment
from hub.gateway.breaker import Admission, Breaker, BreakerState
from hub.gateway.chat_request import ChatRequest, estimated_prompt_tokens, output_cap
from hub.gateway.errors import GatewayError
from hub.gateway.event_stream import EventStreamResponse
from hub.gateway.limits import Limits
from hub.gateway.media_urls import media_refusal
from hub.gateway.model_catalog import Deployment, ModelCatalog, ModelEntry
from hub.gateway.provider_options import options_refusal, without_dropped
from hub.gateway.relay import Accounting, ModelRename, relay_stream, usage_of
from hub.gateway.retry import RetryPolicy
from hub.services.service_accounts import ServiceIdentity
from hub.services.usage import UsageEntry, UsageRecorder

__all__ = ["MODEL_HEADER", "REQUESTED_MODEL_HEADER", "Gateway"]

# A request with less time than this left is out of time (timers may fire a little early).
_DEADLINE_SLACK_S = 0.005

MODEL_HEADER = "x-switchboard-model"
REQUESTED_MODEL_HEADER = "x-switchboard-requested-model"


class Gateway:
    def __init__(
        self,
        *,
        catalog: ModelCatalog,
        recorder: UsageRecorder,
        policy: RetryPolicy,
        breaker: Breaker,
        limits: Limits,
        metrics: GatewayMetrics,
    ) -> None:
        self.catalog = catalog
        self.policy = policy
        self.breaker = breaker
        self._recorder = recorder
        self._limits = limits
        self._metrics = metrics
        self._http: aiohttp.ClientSession | None = None
        self._stream_timeout = policy.stream_timeout()
        self._chains = {
            entry.name: [entry, *(e for n in entry.fallbacks if (e := catalog.get(n)))]
            for entry in catalog.models
        }

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
        self._http = aiohttp.ClientSession(
            connector=connector,
            # A cookie one service's call brought back must not ride along on another's.
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=self.policy.session_timeout(),
            json_serialize=lambda o: orjson.dumps(o).decode(),
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def entry(self, name: str) -> ModelEntry:
        entry = self.catalog.get(name)
        if entry is None:
            known = ", ".join(e.name for e in self.catalog.models)
            raise GatewayError(
                404,
                f"The model {name!r} does not exist. Models you can use: {known}.",
                code="model_not_found",
                param="model",
            )
        return entry

    async def health(self) -> list[tuple[ModelEntry, Deployment, BreakerState]]:
        """Every deployment with its circuit breaker's state, in catalog order."""
        pairs = [(entry, d) for entry in self.catalog.models for d in entry.deployments]
        states = await self.breaker.states([d.name for _, d in pairs])
        return [(entry, d, state) for (entry, d), state in zip(pairs, states, strict=True)]

    async def complete(
        self,
        *,
        service: ServiceIdentity,
        request: ChatRequest,
        agent: str | None = None,
        prompt: str | None = None,
        prompt_version: int | None = None,
    ) -> Response:
        """Answer `request`; its usage record carries the agent, or the prompt and version
        served by name, it was made for."""
        asked = self.entry(request.model)
        refusal = _refusal(asked, request)
        if refusal is not None:
            raise refusal
        started = time.perf_counter()
        deadline = time.monotonic() + self.policy.deadline_s
        record = UsageEntry(
            service_id=service.id,
            service_name=service.name,
            team=service.team,
            model=asked.name,
            deployment=asked.deployments[0].name,
            stream=request.stream,
            agent=agent,
            prompt=prompt,
            prompt_version=prompt_version,
        )
        accounting = Accounting(
            self._recorder, self._limits, self._metrics, service, record, started
        )
        if service.limited:
            budgeted = service.monthly_budget_usd is not None
            try:
                accounting.reserved_usd = await self._limits.admit(
                    service, self._most_cost(asked, request) if budgeted else 0.0
                )
            except GatewayError as refused:
                # In the usage too, so a team sees how often it hits its limits.
                accounting.finish(asked, refused.status, refused.message)
                raise
        try:
            return await self._answer(asked, request, accounting, deadline)
        except BaseException:
            # A call that failed was settled by `finish`; one cut short (cancelled, a bug)
            # gives back what it reserved here.
            accounting.release()
            raise

    def _most_cost(self, asked: ModelEntry, request: ChatRequest) -> float:
        """What the call can cost at most, at the dearest of the models that may answer it:
        its prompt's estimated tokens, and the cap of each of its `n` answers (the request's,
        at most the model's)."""
        body = request.body
        prompt = estimated_prompt_tokens(body)
        cap = output_cap(body)
        answers = body.get("n")
        answers = answers if isinstance(answers, int) and answers > 1 else 1
        return max(
            entry.cost_usd(
                prompt,
                answers
                * (entry.max_output_tokens if cap is None else min(cap, entry.max_output_tokens)),
            )
            for entry in self._chains[asked.name]
        )

    async def _answer(
        self, asked: ModelEntry, request: ChatRequest, accounting: Accounting, deadline: float
    ) -> Response:
        record = accounting.record
        failure: Failure | None = None
        for entry in self._chains[asked.name]:
            if entry is not asked and _refusal(entry, request):
                continue  # a fallback that would refuse the request's URLs or options
            outcome = await self._try_model(entry, request, accounting, deadline)
            if isinstance(outcome, Response):
                return outcome
            if outcome is not None:
                failure = outcome
                if not failure.retryable:
                    break
            if _expired(deadline):
                break
        error = self._final_error(asked, record, failure, deadline)
        if failure is None:
            error.headers["retry-after"] = await self._retry_after(asked)
        accounting.finish(asked, error.status, error.message)
        raise error

    async def _retry_after(self, asked: ModelEntry) -> str:
        """Whole seconds until the first of the model's (and its fallbacks') breakers lets a
        probe through: when trying again is worth it."""
        names = [d.name for entry in self._chains[asked.name] for d in entry.deployments]
        waits = [s.retry_in_s for s in await self.breaker.states(names) if s.state == "open"]
        return str(max(1, math.ceil(min(waits)))) if waits else "1"

    def _final_error(
        self, asked: ModelEntry, record: UsageEntry, failure: Failure | None, deadline: float
    ) -> GatewayError:
        models = [entry.name for entry in self._chains[asked.name]]
        if failure is None:
            return GatewayError(
                503,
                f"No deployment of {' or '.join(models)} is available now: their circuit "
                "breakers are open after repeated failures. Try again shortly.",
                type="upstream_error",
                code="circuit_open",
            )
        if not failure.retryable:
            return failure.error
        tried = f"{record.attempts} attempt{'s' if record.attempts != 1 else ''}"
        if _expired(deadline):
            return GatewayError(
                504,
                f"{failure.error.message} Gave up after {tried} within the deadline of "
                f"{self.policy.deadline_s:g} s.",
                type="upstream_error",
                code="deadline_exceeded",
            )
        failure.error.message = f"{failure.error.message} (after {tried}: {', then '.join(models)})"
        return failure.error

    async def _try_model(
        self, entry: ModelEntry, request: ChatRequest, accounting: Accounting, deadline: float
    ) -> Response | Failure | None:
        """The answer of one of the model's deployments, or the last failure (None when the
        breakers of all its deployments are open)."""
        policy, deployments, record = self.policy, entry.deployments, accounting.record
        failure: Failure | None = None
        calls: dict[str, int] = {}
        not_before: dict[str, float] = {}
        turn = 0
        for _ in range(policy.attempts):
            picked = await self._pick(deployments, turn, not_before, deadline)
            if picked is None:
                break
            deployment, admission, turn = picked
            if calls.get(deployment.name):
                wait = max(
                    policy.backoff(calls[deployment.name]),
                    not_before.get(deployment.name, 0.0) - time.monotonic(),
                )
                if _expired(deadline - wait):
                    break
                await asyncio.sleep(wait)
            calls[deployment.name] = calls.get(deployment.name, 0) + 1
            record.attempts += 1
            record.deployment = deployment.name
            outcome = await call_deployment(
                self._client(),
                deployment,
                self._body(request, entry, deployment),
                stream_timeout=self._stream_timeout if request.stream else None,
                policy=policy,
                deadline=deadline,
            )
            probe = admission is Admission.PROBE
            if isinstance(outcome, Answer):
                await self.breaker.success(deployment.name, probe=probe)
                return self._respond(outcome, entry, deployment, request, accounting)
            failure = outcome
            if not outcome.retryable:
                # The deployment answered; the request was at fault.
                await self.breaker.success(deployment.name, probe=probe)
                return failure
            await self.breaker.failure(deployment.name, probe=probe)
            if outcome.retry_after_s is not None:
                if outcome.retry_after_s > policy.backoff_max_s:
                    not_before[deployment.name] = deadline  # not again in this request
                else:
                    not_before[deployment.name] = time.monotonic() + outcome.retry_after_s
            if _expired(deadline):
                break
        return failure

    async def _pick(
        self,
        deployments: list[Deployment],
        turn: int,
        not_before: dict[str, float],
        deadline: float,
    ) -> tuple[Deployment, Admission, int] | None:
        """The next deployment in turn that its breaker admits and that may be called again
        within the deadline."""
        for step in range(len(deployments)):
            deployment = deployments[(turn + step) % len(deployments)]
            if not_before.get(deployment.name, 0.0) >= deadline:
                continue
            admission = await self.breaker.admit(deployment.name)
            if admission is not Admission.SKIP:
                return deployment, admission, turn + step + 1
        return None

    def _client(self) -> aiohttp.ClientSession:
        assert self._http is not None, "Gateway.start() was not called"
        return self._http

    @staticmethod
    def _body(request: ChatRequest, entry: ModelEntry, deployment: Deployment) -> bytes:
        body = without_dropped(entry.provider_options, request.body)
        body = dict(body, model=deployment.model)
        if request.stream:
            body["stream_options"] = dict(body.get("stream_options") or {}, include_usage=True)
        return orjson.dumps(body)

    def _respond(
        self,
        answer: Answer,
        entry: ModelEntry,
        deployment: Deployment,
        request: ChatRequest,
        accounting: Accounting,
    ) -> Response:
        record = accounting.record
        record.answered_model = entry.name
        headers = {MODEL_HEADER: entry.name, "x-switchboard-deployment": deployment.name}
        if entry.name != record.model:
            headers[REQUESTED_MODEL_HEADER] = record.model
        rename = ModelRename(entry.name)
        if not request.stream:
            payload = answer.first
            try:
                record.input_tokens, record.output_tokens = usage_of(orjson.loads(payload))
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                pass
            accounting.finish(entry, 200, None)
            return Response(
                rename.apply(payload, 1), media_type="application/json", headers=headers
            )
        return EventStreamResponse(
            relay_stream(answer, entry, deployment, request, accounting, rename, self.breaker),
            headers={**headers, "cache-control": "no-cache"},
        )


def _refusal(entry: ModelEntry, request: ChatRequest) -> GatewayError | None:
    """Why `entry` may not be given `request` (its URLs or its options), or None."""
    return media_refusal(entry.name, entry.media_urls, request.body) or options_refusal(
        entry.name, entry.provider_options, request.body
    )


def _expired(deadline: float) -> bool:
    return time.monotonic() >= deadline - _DEADLINE_SLACK_S
