"""Pages for the platform team: the gateway's circuit breakers, and usage and cost over time
(by team, service, model or prompt version)."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

import anyio
from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import Response

from hub.api.deps import HubStateDep, OptionalActor
from hub.api.routes.gateway_health import deployment_health
from hub.gateway.errors import GatewayError
from hub.models.actor import Actor
from hub.services.costs import CostBy, CostRow, cost_rows
from hub.web.charts import PALETTE, Series, stacked_bars
from hub.web.csv_export import csv_download
from hub.web.pages import page, to_login

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_PERIODS = (7, 30, 90)
_BY: tuple[CostBy, ...] = get_args(CostBy)
# Series beyond this many are summed as "other", so a chart stays readable.
_MAX_SERIES = len(PALETTE) - 1


def _refused(request: Request, actor: Actor) -> Response:
    return page(
        request,
        "gateway.html",
        status=403,
        actor=actor,
        error="Only admins see the gateway's state and the platform's costs.",
        deployments=[],
    )


@router.get("/gateway")
async def gateway_page(request: Request, actor: OptionalActor, hub_state: HubStateDep) -> Response:
    if actor is None:
        return to_login(request)
    if not actor.is_admin:
        return _refused(request, actor)
    try:
        deployments = await deployment_health(hub_state.gateway)
    except GatewayError as error:
        return page(request, "gateway.html", status=error.status, actor=actor, error=error.message)
    return page(
        request,
        "gateway.html",
        actor=actor,
        error=None,
        deployments=deployments,
        policy=hub_state.gateway.policy,
        breaker=hub_state.gateway.breaker.policy,
        shared=bool(hub_state.settings.redis_url),
    )


async def _load(hub_state: HubStateDep, days: int) -> tuple[list[str], list[CostRow]]:
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    # Calls still queued in memory belong in the answer too.
    await hub_state.recorder.flush()

    def load() -> list[CostRow]:
        with Session(hub_state.engine) as session:
            return cost_rows(session=session, start=start)

    rows = await anyio.to_thread.run_sync(load)
    labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    return labels, rows


def _series(
    labels: list[str], rows: list[CostRow], by: CostBy, value: Literal["cost", "requests"]
) -> list[Series]:
    index = {label: i for i, label in enumerate(labels)}
    totals: dict[str, float] = defaultdict(float)
    per_day: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(labels))
    for row in rows:
        amount = row.cost_usd if value == "cost" else float(row.requests)
        per_day[row.key(by)][index[row.day.isoformat()]] += amount
        totals[row.key(by)] += amount
    ranked = sorted(totals, key=lambda key: -totals[key])
    series = [Series(key, per_day[key], PALETTE[i]) for i, key in enumerate(ranked[:_MAX_SERIES])]
    if len(ranked) > _MAX_SERIES:
        rest = [sum(per_day[key][i] for key in ranked[_MAX_SERIES:]) for i in range(len(labels))]
        series.append(Series("other", rest, PALETTE[-1]))
    return series


def _totals(rows: list[CostRow], by: CostBy) -> list[dict[str, float | int | str]]:
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        total = sums[row.key(by)]
        total["requests"] += row.requests
        total["errors"] += row.errors
        total["input_tokens"] += row.input_tokens
        total["output_tokens"] += row.output_tokens
        total["cost_usd"] += row.cost_usd
    ordered = sorted(sums.items(), key=lambda item: -item[1]["cost_usd"])
    return [{"name": name, **values} for name, values in ordered]


def _period(days: int) -> int:
    return days if days in _PERIODS else 30


@router.get("/costs")
async def costs_page(
    request: Request,
    actor: OptionalActor,
    hub_state: HubStateDep,
    days: int = 30,
    by: CostBy = "team",
) -> Response:
    if actor is None:
        return to_login(request)
    if not actor.is_admin:
        return _refused(request, actor)
    days = _period(days)
    labels, rows = await _load(hub_state, days)
    short = [label[5:] for label in labels]
    cost_chart = stacked_bars(
        short, _series(labels, rows, by, "cost"), title=f"Cost per day by {by}", unit="$"
    )
    requests_chart = stacked_bars(
        short, _series(labels, rows, by, "requests"), title=f"Requests per day by {by}"
    )
    return page(
        request,
        "costs.html",
        actor=actor,
        days=days,
        by=by,
        periods=_PERIODS,
        choices=_BY,
        cost_chart=cost_chart,
        requests_chart=requests_chart,
        totals=_totals(rows, by),
        total_cost=sum(row.cost_usd for row in rows),
        total_requests=sum(row.requests for row in rows),
    )


@router.get("/costs.csv")
async def costs_csv(
    request: Request, actor: OptionalActor, hub_state: HubStateDep, days: int = 30
) -> Response:
    if actor is None:
        return to_login(request)
    if not actor.is_admin:
        return Response("Only admins export costs.\n", status_code=403, media_type="text/plain")
    days = _period(days)
    _, rows = await _load(hub_state, days)
    header = [
        "day",
        "team",
        "service",
        "model",
        "prompt",
        "prompt_version",
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    ]
    cells = (
        [
            row.day.isoformat(),
            row.team,
            row.service,
            row.model,
            row.prompt,  # None (not made by name) is an empty cell
            row.prompt_version,
            row.requests,
            row.errors,
            row.input_tokens,
            row.output_tokens,
            f"{row.cost_usd:.8f}",
        ]
        for row in rows
    )
    filename = f"switchboard-costs-{datetime.now(UTC):%Y-%m-%d}-{days}d.csv"
    return csv_download(filename, header, cells)
