"""Rows written in batches off the request path: one INSERT per flush interval."""

import asyncio
import dataclasses
import logging
import operator
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Dialect, Engine, insert

__all__ = ["BatchWriter"]

logger = logging.getLogger(__name__)

Entry = TypeVar("Entry")


class BatchWriter(Generic[Entry]):
    """Queues dataclass entries in memory and inserts them into `table` in one transaction
    per flush interval; a failed write keeps its batch for the next flush."""

    def __init__(self, engine: Engine, table: Any, flush_interval_s: float, name: str) -> None:
        self._engine = engine
        self._table = table
        self._interval = flush_interval_s
        self._name = name
        self._pending: list[Entry] = []
        self._task: asyncio.Task[None] | None = None
        # Serializes flushes, so a reader who flushes also waits for a write already under way.
        self._flushing = asyncio.Lock()
        self._inserts: dict[type, _Insert] = {}

    def add(self, entry: Entry) -> None:
        self._pending.append(entry)

    @property
    def pending(self) -> int:
        """How many entries wait for the next write."""
        return len(self._pending)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.flush()

    async def flush(self) -> None:
        async with self._flushing:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._write, batch)
            except Exception:
                # Keep the batch for the next flush rather than lose what was already served.
                logger.exception("could not write %d %s rows; will retry", len(batch), self._name)
                self._pending[:0] = batch

    def _write(self, batch: list[Entry]) -> None:
        with self._engine.begin() as connection:
            statement = self._insert(type(batch[0]))
            connection.exec_driver_sql(statement.sql, [statement.row(entry) for entry in batch])

    def _insert(self, entry_type: type) -> "_Insert":
        if entry_type not in self._inserts:
            self._inserts[entry_type] = _Insert(self._table, entry_type, self._engine.dialect)
        return self._inserts[entry_type]

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            # Shielded: a write under way finishes (and returns its connection) even when
            # close() cancels this task; close() then waits for it through the lock.
            await asyncio.shield(self.flush())


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
