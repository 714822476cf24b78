"""The regression gate of a prompt or an agent: bind it to a test set and checks, read its gate
checks, and (admins) override a refused one. The same routes under `/api/prompts/{name}` and
`/api/agents/{slug}`. A gate check starts when production is asked to move: a prompt's at
`POST /api/prompts/{name}/production` (hub/api/routes/prompts.py), an agent's when its draft is
published at `POST /api/agents/{slug}/publish` (hub/api/routes/agents.py)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from hub.api.deps import CurrentActor, HubStateDep, RowId
from hub.api.paging import PageDep
from hub.core.errors import NotFoundError
from hub.evaluation.gates import EvalGates
from hub.models.eval_gate import GateCheckPublic, GateOverride, GatePublic, GateSet
from hub.models.evaluation import TargetKind
from hub.state import HubState

__all__ = ["EvalGatesDep", "agent_router", "eval_gates_of", "prompt_router"]


def eval_gates_of(hub_state: HubState) -> EvalGates:
    return EvalGates(
        engine=hub_state.engine, models=hub_state.gateway.catalog, resolver=hub_state.prompts
    )


async def get_eval_gates(hub_state: HubStateDep) -> EvalGates:
    return eval_gates_of(hub_state)


EvalGatesDep = Annotated[EvalGates, Depends(get_eval_gates)]


def _gate_routes(kind: TargetKind) -> APIRouter:
    """The gate's routes of one kind of target, under `/api/prompts` or `/api/agents`."""
    router = APIRouter(prefix=f"/api/{kind}s", tags=["evaluation"])

    @router.get("/{name}/gate", response_model=GatePublic)
    async def get_gate(name: str, actor: CurrentActor, gates: EvalGatesDep) -> GatePublic:
        """The test set, checks and margin; 404 when there is no gate."""
        gate = await gates.get(kind, name, actor)
        if gate is None:
            raise NotFoundError(
                f"The {kind} {name!r} has no gate; bind one with PUT /api/{kind}s/{name}/gate."
            )
        return gate

    @router.put("/{name}/gate", response_model=GatePublic)
    async def set_gate(
        name: str, body: GateSet, actor: CurrentActor, gates: EvalGatesDep
    ) -> GatePublic:
        """Bind to a test set (its latest version at each check) and checks, with the share
        of cases by which a new version may score below production's."""
        return await gates.bind(kind, name, body, actor)

    @router.delete("/{name}/gate", status_code=204)
    async def remove_gate(name: str, actor: CurrentActor, gates: EvalGatesDep) -> Response:
        """Production moves at once from now on."""
        await gates.remove(kind, name, actor)
        return Response(status_code=204)

    @router.get("/{name}/gate-checks", response_model=list[GateCheckPublic])
    async def list_gate_checks(
        name: str, actor: CurrentActor, gates: EvalGatesDep, page: PageDep
    ) -> list[GateCheckPublic]:
        """The gate checks, newest first. Paged."""
        return page.answer(
            await gates.checks(kind, name, actor, offset=page.offset, limit=page.fetch)
        )

    @router.get("/{name}/gate-checks/{check_id}", response_model=GateCheckPublic)
    async def get_gate_check(
        name: str, check_id: RowId, actor: CurrentActor, gates: EvalGatesDep
    ) -> GateCheckPublic:
        """The check's status, its runs' progress, both scores and the rows that got worse."""
        return await gates.check(kind, name, check_id, actor)

    @router.post("/{name}/gate-checks/{check_id}/override", response_model=GateCheckPublic)
    async def override_gate_check(
        name: str, check_id: RowId, body: GateOverride, actor: CurrentActor, gates: EvalGatesDep
    ) -> GateCheckPublic:
        """Admins: move production to a refused (or failed) candidate anyway, saying why."""
        return await gates.override(kind, name, check_id, body.reason, actor)

    return router


prompt_router = _gate_routes("prompt")
agent_router = _gate_routes("agent")
