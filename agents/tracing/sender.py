"""Sending trace records to the hub (`POST /api/traces/batch`) in batches, off the path of
the run.

Records are queued in memory and sent every `flush_interval_s`, and on `flush()`. The latest
record of a run replaces one still queued (the hub upserts runs by id), and runs go out ahead
of steps, so a step's run is in the same batch or an earlier one. When the hub cannot be
reached or fails (5xx), the batch is kept and sent again at the next flush, within
`max_pending` records: past it the oldest steps, then runs, are dropped, with a warning. A
batch the hub refuses (4xx) is logged and dropped, so it cannot hold back the ones after it.
"""

import asyncio
import logging

import httpx

from agents.tracing.records import MAX_BATCH_ENTRIES, RunRecord, StepRecord, TraceBatch

__all__ = ["BATCH_PATH", "TraceSender"]

logger = logging.getLogger(__name__)

BATCH_PATH = "/api/traces/batch"


class TraceSender:
    """Queues run and step records and posts them to the hub at `hub_url` with `token` (the
    chat app's service token, the only one the hub takes traces from). `transport` carries
    the posts instead of the network: the hub's own evaluation runs write their traces so."""

    def __init__(
        self,
        hub_url: str,
        token: str,
        *,
        flush_interval_s: float,
        max_pending: int,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = f"{hub_url.rstrip('/')}{BATCH_PATH}"
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=timeout_s,
            transport=transport,
        )
        self._interval = flush_interval_s
        self._max_pending = max_pending
        # The latest record of each run not yet sent, in the order the runs were first queued,
        # and the steps in the order they ended.
        self._runs: dict[str, RunRecord] = {}
        self._steps: list[StepRecord] = []
        self._dropped = 0
        self._task: asyncio.Task[None] | None = None
        # Serializes flushes, so a caller who flushes also waits for a send already under way.
        self._flushing = asyncio.Lock()

    def add_run(self, record: RunRecord) -> None:
        self._runs[record.id] = record
        self._bound()

    def add_step(self, record: StepRecord) -> None:
        self._steps.append(record)
        self._bound()

    def _bound(self) -> None:
        """Past `max_pending` (the hub out of reach for long), drop the oldest steps, then the
        oldest runs: a run's record carries its status and totals, a step only itself."""
        excess = len(self._runs) + len(self._steps) - self._max_pending
        if excess <= 0:
            return
        steps = min(excess, len(self._steps))
        del self._steps[:steps]
        for run_id in list(self._runs)[: excess - steps]:
            del self._runs[run_id]
        self._dropped += excess

    async def start(self) -> None:
        """Start sending in the background, every `flush_interval_s`."""
        self._task = asyncio.create_task(self._run(), name="trace-sender")

    async def flush(self) -> None:
        """Send everything queued so far, now; what the hub could not take stays queued."""
        async with self._flushing:
            if self._dropped:
                logger.warning(
                    "dropped the %d oldest trace records: more than %d were waiting for the "
                    "hub at %s",
                    self._dropped,
                    self._max_pending,
                    self._url,
                )
                self._dropped = 0
            while self._runs or self._steps:
                batch = self._take()
                if not await self._send(batch):
                    self._put_back(batch)
                    return

    def _take(self) -> TraceBatch:
        """The next batch: runs first, then steps, at most MAX_BATCH_ENTRIES in all."""
        run_ids = list(self._runs)[:MAX_BATCH_ENTRIES]
        runs = [self._runs.pop(run_id) for run_id in run_ids]
        room = MAX_BATCH_ENTRIES - len(runs)
        steps, self._steps = self._steps[:room], self._steps[room:]
        return TraceBatch(runs=runs, steps=steps)

    def _put_back(self, batch: TraceBatch) -> None:
        """Queue a batch that was not delivered again, ahead of what came since (a run's newer
        record, queued meanwhile, replaces the one in the batch)."""
        self._runs = {**{run.id: run for run in batch.runs}, **self._runs}
        self._steps[:0] = batch.steps
        self._bound()

    async def _send(self, batch: TraceBatch) -> bool:
        """Whether the batch is done with: written, or refused for good (4xx). False when the
        hub is out of reach or failed, to send it again later."""
        entries = len(batch.runs) + len(batch.steps)
        # Off the event loop: a batch of model calls' messages can be large.
        body = await asyncio.to_thread(batch.model_dump_json, fallback=str)
        try:
            response = await self._http.post(self._url, content=body)
        except httpx.HTTPError as exc:
            logger.warning(
                "could not send %d trace records to the hub at %s (%s); will retry",
                entries,
                self._url,
                str(exc) or type(exc).__name__,
            )
            return False
        if response.is_server_error:
            logger.warning(
                "the hub failed to take %d trace records (%d: %s); will retry",
                entries,
                response.status_code,
                response.text[:500],
            )
            return False
        if response.is_error:
            logger.error(
                "the hub refused %d trace records (%d: %s); dropped them",
                entries,
                response.status_code,
                response.text[:500],
            )
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            # Shielded: a send under way finishes even when close() cancels this task;
            # close() then waits for it through the lock.
            await asyncio.shield(self.flush())

    async def close(self) -> None:
        """Stop sending in the background, send what is queued, and close the connection."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        try:
            await self.flush()
            if unsent := len(self._runs) + len(self._steps):
                logger.warning(
                    "%d trace records were not sent: the hub at %s did not take them",
                    unsent,
                    self._url,
                )
        finally:
            await self._http.aclose()
