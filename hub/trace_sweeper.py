"""Removes the traces of deleted conversations once their audit period is over: at start and
then every `trace_sweep_interval_s`, in every hub replica (the same delete, whoever runs it),
besides on each conversation deletion."""

import asyncio
import logging

import anyio
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from hub.models.service import utcnow
from hub.services.traces import purge_forgotten

__all__ = ["TraceSweeper"]

logger = logging.getLogger(__name__)


class TraceSweeper:
    def __init__(self, *, engine: Engine, keep_days: int, interval_s: float) -> None:
        self._engine = engine
        self._keep_days = keep_days
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._sweep_every_interval())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _sweep_every_interval(self) -> None:
        while True:
            try:
                await anyio.to_thread.run_sync(self._sweep)
            except SQLAlchemyError:
                # A database that is down now may be back at the next sweep.
                logger.warning("could not remove expired traces", exc_info=True)
            await asyncio.sleep(self._interval_s)

    def _sweep(self) -> None:
        with Session(self._engine) as session:
            purge_forgotten(session=session, now=utcnow(), keep_days=self._keep_days)
