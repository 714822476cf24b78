"""The regression gate of a prompt: bind it to a test set and checks, read its gate checks,
and (admins) override a refused one. A gate check starts when production is asked to move,
at `POST /api/prompts/{name}/production` (hub/api/routes/prompts.py)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from hub.api.deps import CurrentActor, HubStateDep
from hub.core.errors import NotFoundError
from hub.evaluation.gates import EvalGates
from hub.models.eval_gate import GateCheckPublic, GateOverride, GatePublic, GateSet

__all__ = ["EvalGatesDep", "router"]


async def get_eval_gates(hub_state: HubStateDep) -> EvalGates:
    return EvalGates(
        engine=hub_state.engine, models=hub_state.gateway.catalog, resolver=hub_state.prompts
    )


EvalGatesDep = Annotated[EvalGates, Depends(get_eval_gates)]

router = APIRouter(prefix="/api/prompts", tags=["evaluation"])


@router.get("/{name}/gate", response_model=GatePublic)
async def get_gate(name: str, _: CurrentActor, gates: EvalGatesDep) -> GatePublic:
    """The prompt's test set, checks and margin; 404 when it has no gate."""
    gate = await gates.get(name)
    if gate is None:
        raise NotFoundError(
            f"The prompt {name!r} has no gate; bind one with PUT /api/prompts/{name}/gate."
        )
    return gate


@router.put("/{name}/gate", response_model=GatePublic)
async def set_gate(
    name: str, body: GateSet, actor: CurrentActor, gates: EvalGatesDep
) -> GatePublic:
    """Bind the prompt to a test set (its latest version at each check) and checks, with the
    share of cases by which a new version may score below production's."""
    return await gates.bind(name, body, actor)


@router.delete("/{name}/gate", status_code=204)
async def remove_gate(name: str, actor: CurrentActor, gates: EvalGatesDep) -> Response:
    """Production moves at once from now on."""
    await gates.remove(name, actor)
    return Response(status_code=204)


@router.get("/{name}/gate-checks", response_model=list[GateCheckPublic])
async def list_gate_checks(
    name: str, _: CurrentActor, gates: EvalGatesDep
) -> list[GateCheckPublic]:
    """The prompt's last 50 gate checks, newest first."""
    return await gates.checks(name)


@router.get("/{name}/gate-checks/{check_id}", response_model=GateCheckPublic)
async def get_gate_check(
    name: str, check_id: int, _: CurrentActor, gates: EvalGatesDep
) -> GateCheckPublic:
    """The check's status, its runs' progress, both scores and the rows that got worse."""
    return await gates.check(name, check_id)


@router.post("/{name}/gate-checks/{check_id}/override", response_model=GateCheckPublic)
async def override_gate_check(
    name: str, check_id: int, body: GateOverride, actor: CurrentActor, gates: EvalGatesDep
) -> GateCheckPublic:
    """Admins: make a refused (or failed) candidate production anyway, saying why."""
    return await gates.override(name, check_id, body.reason, actor)
