"""Rows written in batches off the request path: one INSERT per flush interval.

A row the database refuses (a value longer than its column, a key it does not have) cannot hold
back the others: the batch is split in halves until each refused row stands alone, every other
row is written, and each refused row is logged (an error, with the database's reason and the
row's fields, cut short) and set aside: the log is where it is kept, and the writer holds the
latest `SET_ASIDE_KEPT` of them in memory (`set_aside_rows()`) with a count (`figures()`).

While the database cannot be reached (or fails in any other way), the rows wait in memory and
are written at the first flush it takes them, at most `max_pending` of them: past that the
oldest are dropped, counted, and logged as a warning. The oldest go rather than the newest
because the newest are the ones read first (today's costs, this month's budgets), and because
the chat's tracer does the same with its records (agents/tracing/sender.py).
"""

import asyncio
import dataclasses
import logging
import operator
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Dialect, Engine, insert
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

__all__ = ["CLOSE_DEADLINE_S", "SET_ASIDE_KEPT", "BatchWriter", "SetAsideRow", "WriterFigures"]

logger = logging.getLogger(__name__)

Entry = TypeVar("Entry")

# How many refused rows a writer keeps in memory (every one of them is in the log).
SET_ASIDE_KEPT = 100
# How long close() keeps trying to write what is left while the database does not take it.
CLOSE_DEADLINE_S = 5.0
_CLOSE_RETRY_PAUSE_S = 0.5
# How much of a refused row's values and of the database's reason goes into the log.
_VALUE_CHARS = 60
_REASON_CHARS = 300


@dataclasses.dataclass(frozen=True, slots=True)
class WriterFigures:
    """What one writer has done since it started, for monitoring: rows waiting now, and rows
    written, set aside (refused by the database) and dropped (past the bound) so far."""

    name: str
    pending: int
    written: int
    set_aside: int
    dropped: int


@dataclasses.dataclass(frozen=True, slots=True)
class SetAsideRow(Generic[Entry]):
    """A row the database refused, and its reason (the database's message)."""

    entry: Entry
    reason: str


@dataclasses.dataclass(slots=True)
class _Outcome(Generic[Entry]):
    """What one write did: rows written, rows refused, and rows left for the next flush (with
    the error that stopped the write) when the database did not take them."""

    written: int = 0
    refused: list[SetAsideRow[Entry]] = dataclasses.field(default_factory=list)
    unwritten: list[Entry] = dataclasses.field(default_factory=list)
    error: Exception | None = None


class BatchWriter(Generic[Entry]):
    """Queues dataclass entries in memory (at most `max_pending`) and inserts them into
    `table` in one transaction per flush interval. `add()` is called on the event loop."""

    def __init__(
        self, engine: Engine, table: Any, flush_interval_s: float, name: str, max_pending: int
    ) -> None:
        self._engine = engine
        self._table = table
        self._interval = flush_interval_s
        self._name = name
        self._max_pending = max_pending
        self._pending: deque[Entry] = deque(maxlen=max_pending)
        self._set_aside: deque[SetAsideRow[Entry]] = deque(maxlen=SET_ASIDE_KEPT)
        self._written = 0
        self._set_aside_count = 0
        self._dropped = 0
        self._dropped_logged = 0
        # Rows taken by the write under way.
        self._writing = 0
        # When the database stopped taking rows (monotonic time), while it does not.
        self._failing_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        # Serializes flushes, so a reader who flushes also waits for a write already under way.
        self._flushing = asyncio.Lock()
        self._inserts: dict[type, _Insert] = {}

    def add(self, entry: Entry) -> None:
        if len(self._pending) == self._max_pending:
            # The deque drops its oldest entry to take this one.
            self._count_dropped(1)
        self._pending.append(entry)

    def figures(self) -> WriterFigures:
        return WriterFigures(
            name=self._name,
            pending=len(self._pending) + self._writing,
            written=self._written,
            set_aside=self._set_aside_count,
            dropped=self._dropped,
        )

    def set_aside_rows(self) -> list[SetAsideRow[Entry]]:
        """The latest rows the database refused, oldest first."""
        return list(self._set_aside)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-writer")

    async def close(self, deadline_s: float = CLOSE_DEADLINE_S) -> None:
        """Stop writing in the background and write what is queued, trying again for up to
        `deadline_s` while the database does not take it (one try may last as long as the
        database's own time-out); what is left then is lost, and logged as an error."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        deadline = time.monotonic() + deadline_s
        await self.flush()
        while self._pending and time.monotonic() + _CLOSE_RETRY_PAUSE_S < deadline:
            await asyncio.sleep(_CLOSE_RETRY_PAUSE_S)
            await self.flush()
        if self._pending:
            logger.error(
                "lost %d %s rows: the database did not take them within %.1f s of shutting down",
                len(self._pending),
                self._name,
                deadline_s,
            )

    async def flush(self) -> None:
        """Write everything queued so far, now; what the database could not take stays queued."""
        # Shielded: a write under way finishes and counts its rows even when the caller is
        # cancelled (a request that went away, close() stopping the background task).
        await asyncio.shield(self._flush())

    async def _flush(self) -> None:
        async with self._flushing:
            if not self._pending:
                return
            batch = list(self._pending)
            self._pending.clear()
            self._writing = len(batch)
            try:
                outcome = await asyncio.to_thread(self._write, batch)
            finally:
                self._writing = 0
            self._written += outcome.written
            for row in outcome.refused:
                logger.error(
                    "the database refused a %s row (%s); set it aside: %s",
                    self._name,
                    row.reason,
                    _describe(row.entry),
                )
            self._set_aside.extend(outcome.refused)
            self._set_aside_count += len(outcome.refused)
            if outcome.error is not None:
                self._keep(outcome.unwritten, outcome.error)
            else:
                self._recovered()

    def _keep(self, unwritten: list[Entry], error: Exception) -> None:
        """Queue rows the database did not take again, ahead of those added since (within the
        bound: the oldest go first)."""
        waiting = len(unwritten) + len(self._pending)
        self._pending = deque([*unwritten, *self._pending], maxlen=self._max_pending)
        self._count_dropped(waiting - len(self._pending))
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            # Once per outage, not at every flush.
            logger.warning(
                "could not write %d %s rows (%s); keeping them and trying again every %.1f s",
                len(unwritten),
                self._name,
                _reason(error),
                self._interval,
                exc_info=not isinstance(error, DBAPIError),
            )

    def _recovered(self) -> None:
        if self._failing_since is not None:
            logger.warning(
                "the database takes %s rows again, after %.1f s",
                self._name,
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None
        if self._dropped > self._dropped_logged:
            logger.warning(
                "dropped %d %s rows in all while the database did not take them",
                self._dropped - self._dropped_logged,
                self._name,
            )
            self._dropped_logged = self._dropped

    def _count_dropped(self, count: int) -> None:
        if count <= 0:
            return
        if self._dropped == self._dropped_logged:
            logger.warning(
                "more than %d %s rows are waiting for the database; dropping the oldest",
                self._max_pending,
                self._name,
            )
        self._dropped += count

    def _write(self, batch: list[Entry]) -> _Outcome[Entry]:
        """Write `batch`, one transaction per part: a part with a refused row is split in two
        until the row stands alone. Any other error stops the write, keeping the rest."""
        outcome: _Outcome[Entry] = _Outcome()
        # Parts still to write, the next one last.
        parts = [batch]
        while parts:
            part = parts.pop()
            try:
                self._insert_rows(part)
            except (DataError, IntegrityError, TypeError, ValueError) as exc:
                # The same rows would be refused again: find the ones at fault.
                if len(part) == 1:
                    outcome.refused.append(SetAsideRow(part[0], _reason(exc)))
                else:
                    middle = len(part) // 2
                    parts += [part[middle:], part[:middle]]
                continue
            except Exception as exc:
                # The database is out of reach or failing: keep every row not yet written.
                outcome.unwritten = [entry for rest in [part, *reversed(parts)] for entry in rest]
                outcome.error = exc
                return outcome
            outcome.written += len(part)
        return outcome

    def _insert_rows(self, entries: list[Entry]) -> None:
        with self._engine.begin() as connection:
            statement = self._insert(type(entries[0]))
            connection.exec_driver_sql(statement.sql, [statement.row(entry) for entry in entries])

    def _insert(self, entry_type: type) -> "_Insert":
        if entry_type not in self._inserts:
            self._inserts[entry_type] = _Insert(self._table, entry_type, self._engine.dialect)
        return self._inserts[entry_type]

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            # When close() cancels this task during a write, the write goes on (flush() is
            # shielded); close() then waits for it through the lock.
            await self.flush()


def _reason(exc: Exception) -> str:
    """The database's own message (without SQLAlchemy's statement and parameters), on one line."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        message = str(exc.orig)
    else:
        message = str(exc) or type(exc).__name__
    return _cut(" ".join(message.split()), _REASON_CHARS)


def _describe(entry: Any) -> str:
    """A row's fields for the log, long values cut short (with their length)."""
    return ", ".join(
        f"{field.name}={_short(getattr(entry, field.name))}" for field in dataclasses.fields(entry)
    )


def _short(value: object) -> str:
    if isinstance(value, str) and len(value) > _VALUE_CHARS:
        return f"{value[:_VALUE_CHARS]!r}... ({len(value)} characters)"
    return _cut(repr(value), _VALUE_CHARS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class _Insert:
    """One INSERT of an entry type's fields, compiled once, with the columns' own bind
    processors applied row by row. Through `Connection.execute` SQLAlchemy rebuilds every
    row's parameters generically: ~40 us a row here, held under the GIL while the event loop
    waits; this way ~10 us."""

    def __init__(self, table: Any, entry_type: type, dialect: Dialect) -> None:
        names = [f.name for f in dataclasses.fields(entry_type)]
        statement = insert(table)
        compiled = statement.compile(dialect=dialect, column_keys=names)
        self.sql = compiled.string
        # Not dataclasses.asdict: it deep-copies every value, ~20 times slower on flat rows.
        self._values = operator.attrgetter(*names)
        columns = statement.table.c
        processors = [
            columns[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        ]
        self._processed = [(i, p) for i, p in enumerate(processors) if p is not None]
        if compiled.positional:
            order = [names.index(name) for name in compiled.positiontup or []]
            self._shape: Callable[[list[Any]], Any] = operator.itemgetter(*order)
        else:
            self._shape = lambda v: dict(zip(names, v, strict=True))

    def row(self, entry: Any) -> Any:
        values = list(self._values(entry))
        for index, process in self._processed:
            values[index] = process(values[index])
        return self._shape(values)
