"""The BigQuery MCP server: find the tables, read their notes, dry-run and run guarded queries.

Two guards stand between a model and the warehouse. Layer one (`guard.check_query`) parses the
SQL before anything reaches BigQuery: one SELECT, allowed datasets only. Layer two is BigQuery
itself: every query is dry-run first and refused unless BigQuery reads it as a SELECT whose
tables (the dry run's own list) are all in the allowed datasets, and above the byte limit.
Every real job carries `maximum_bytes_billed`, labels and a time-out (after which it is
cancelled in BigQuery), and returns at most `max_rows` rows to the model.
"""

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import anyio
from google.api_core.exceptions import GoogleAPIError, RetryError
from google.cloud import bigquery
from google.cloud.bigquery.retry import DEFAULT_RETRY
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from mcp_servers.bigquery.guard import CheckedQuery, GuardPolicy, QueryRefusedError, check_query
from mcp_servers.bigquery.warehouse import WarehouseSettings, get_warehouse_settings, make_client

__all__ = ["QueryLimits", "build_server"]

NOTES_DIR = Path(__file__).resolve().parent.parent / "datamodel" / "docs"
READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)
# On-demand price per TiB scanned, for telling people what a query costs.
USD_PER_TIB = 6.25
_LABEL_VALUE = re.compile(r"[^a-z0-9_-]")
# BigQuery lists at most this many tables a query references; a longer list is cut short.
MAX_LISTED_TABLES = 50
_CANCEL_TIMEOUT_S = 10.0
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_bytes: int = 10 * 1024**3
    max_rows: int = 200
    timeout_s: float = 60.0

    def deadlines(self) -> dict[str, Any]:
        """A query the warehouse keeps failing must not be retried for the client's default
        10 minutes: every call gives up after the time-out."""
        return {
            "retry": DEFAULT_RETRY.with_deadline(self.timeout_s),
            "job_retry": None,
            "timeout": self.timeout_s,
        }


class TableInfo(BaseModel):
    table: str = Field(description="Qualified name to use in SQL: dataset.table.")
    description: str
    rows: int | None = Field(description="Row count, when BigQuery reports it.")


class ColumnInfo(BaseModel):
    name: str
    type: str
    mode: str = Field(description="REQUIRED, NULLABLE or REPEATED.")
    description: str


class TableDescription(BaseModel):
    table: str
    description: str
    columns: list[ColumnInfo]
    notes: str = Field(description="The data-model notes: meaning, joins, pitfalls, examples.")


class DryRun(BaseModel):
    sql: str
    tables: list[str] = Field(description="The tables the query reads.")
    bytes_processed: int = Field(description="What the query would scan (and bill).")
    cost_usd: float = Field(description="Estimated on-demand cost.")
    within_limit: bool
    limit_bytes: int
    estimated: bool = Field(
        default=False,
        description="True when the bytes are estimated from table sizes (the local emulator "
        "reports none); real BigQuery reports them exactly.",
    )


class QueryResult(BaseModel):
    sql: str
    columns: list[ColumnInfo]
    rows: list[dict[str, Any]]
    row_count: int = Field(description="Rows returned here (at most max_rows).")
    truncated: bool = Field(description="True when the query had more rows than returned.")
    bytes_processed: int
    cost_usd: float
    job_id: str


@dataclass
class _Warehouse:
    client: bigquery.Client
    settings: WarehouseSettings
    policy: GuardPolicy
    limits: QueryLimits


def _cost(bytes_processed: int) -> float:
    return round(bytes_processed / 1024**4 * USD_PER_TIB, 6)


def _plain(value: Any) -> Any:
    """A value as JSON can carry it: numbers stay numbers, times become ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _labels(ctx: Context[Any, Any, Any] | None) -> dict[str, str]:
    """Labels on every job: who asked, for which conversation, agent and trace (the hub sends
    them in the request's _meta), so the warehouse's own audit says where a query came from."""
    labels = {"app": "switchboard"}
    meta = ctx.request_context.meta if ctx is not None else None
    extra = meta.model_dump() if meta is not None else {}
    for key in ("user", "conversation", "agent", "trace"):
        value = extra.get(f"switchboard_{key}")
        if isinstance(value, str) and value:
            labels[key] = _LABEL_VALUE.sub("_", value.lower())[:63]
    return labels


def _checked(sql: str, warehouse: _Warehouse) -> CheckedQuery:
    try:
        return check_query(sql, warehouse.policy)
    except QueryRefusedError as error:
        raise ToolError(f"Query refused: {error}") from error


def _dry_run(checked: CheckedQuery, warehouse: _Warehouse) -> DryRun:
    config = bigquery.QueryJobConfig(
        dry_run=True,
        use_query_cache=False,
        use_legacy_sql=False,
        default_dataset=f"{warehouse.settings.project_id}.{warehouse.policy.default_dataset}",
    )
    try:
        job = warehouse.client.query(checked.sql, job_config=config, **warehouse.limits.deadlines())
    except GoogleAPIError as error:
        raise ToolError(f"BigQuery could not plan the query: {_message(error)}") from error
    # Layer two: what BigQuery itself reads the statement as, whatever the parser thought.
    if job.statement_type not in (None, "SELECT"):
        raise ToolError(f"Query refused: BigQuery reads it as {job.statement_type}, not SELECT.")
    _check_referenced(job, warehouse.policy)
    scanned = int(job.total_bytes_processed or 0)
    estimated = scanned == 0 and warehouse.settings.uses_emulator
    if estimated:
        scanned = _estimate_bytes(checked.tables, warehouse)
    return DryRun(
        sql=checked.sql,
        tables=list(checked.tables),
        bytes_processed=scanned,
        estimated=estimated,
        cost_usd=_cost(scanned),
        within_limit=scanned <= warehouse.limits.max_bytes,
        limit_bytes=warehouse.limits.max_bytes,
    )


def _check_referenced(job: bigquery.QueryJob, policy: GuardPolicy) -> None:
    """Layer two: every table (and property graph) the dry run says the query reads must be in
    an allowed dataset, however the text spelled it."""
    tables = list(job.referenced_tables)
    graphs = list(job.referenced_property_graphs)
    read = [(t.project, t.dataset_id, t.table_id) for t in tables]
    read += [(g.project, g.dataset_id, g.property_graph_id) for g in graphs]
    outside = sorted({f"{p}.{d}.{n}" for p, d, n in read if not policy.allows(p, d)})
    if outside:
        raise ToolError(
            f"Query refused: BigQuery reports that it reads {', '.join(outside)}, outside the "
            f"allowed datasets ({policy.describe()}). Query only tables in: {policy.describe()}."
        )
    if len(tables) >= MAX_LISTED_TABLES:
        raise ToolError(
            f"Query refused: it reads {MAX_LISTED_TABLES} tables or more, and BigQuery lists no "
            "more than that, so they cannot all be checked. Read fewer tables, for example a "
            "narrower _TABLE_SUFFIX range of a wildcard table."
        )


# BigQuery's storage sizes per value; a STRING is counted at a typical length.
_TYPE_BYTES = {
    "INT64": 8,
    "INTEGER": 8,
    "FLOAT64": 8,
    "FLOAT": 8,
    "NUMERIC": 16,
    "BOOL": 1,
    "BOOLEAN": 1,
    "TIMESTAMP": 8,
    "DATE": 8,
    "DATETIME": 8,
    "TIME": 8,
    "STRING": 32,
}


def _estimate_bytes(tables: tuple[str, ...], warehouse: _Warehouse) -> int:
    """An upper bound for the emulator, which reports 0: every column of every table read."""
    total = 0
    for name in tables:
        if ".INFORMATION_SCHEMA." in name:
            continue
        table = warehouse.client.get_table(name)
        width = sum(_TYPE_BYTES.get(field.field_type, 32) for field in table.schema)
        total += int(table.num_rows or 0) * width
    return total


def _message(error: GoogleAPIError) -> str:
    return str(getattr(error, "message", None) or error)


def _run(
    checked: CheckedQuery, warehouse: _Warehouse, max_rows: int, labels: dict[str, str]
) -> QueryResult:
    planned = _dry_run(checked, warehouse)
    if not planned.within_limit:
        raise ToolError(
            f"Query refused: it would process {planned.bytes_processed:,} bytes, over the "
            f"limit of {warehouse.limits.max_bytes:,}. Select fewer columns, filter on the "
            "date first, or aggregate over a shorter period."
        )
    limits = warehouse.limits
    config = bigquery.QueryJobConfig(
        use_legacy_sql=False,
        maximum_bytes_billed=limits.max_bytes,
        labels=labels,
        default_dataset=f"{warehouse.settings.project_id}.{warehouse.policy.default_dataset}",
        # BigQuery stops the job itself too, should this process die before it can cancel.
        job_timeout_ms=int(limits.timeout_s * 1000),
    )
    # Our own id, so the job can be cancelled even when the call that creates it times out.
    job_id = f"switchboard_{uuid.uuid4().hex}"
    job: bigquery.QueryJob | None = None
    try:
        job = warehouse.client.query(
            checked.sql, job_config=config, job_id=job_id, **limits.deadlines()
        )
        result = job.result(max_results=max_rows + 1, timeout=limits.timeout_s)
        rows = [dict(row.items()) for row in result]
    except (TimeoutError, RetryError) as error:
        # The job's own location when BigQuery answered with it (jobs.cancel needs it).
        location = job.location if job is not None else None
        _cancel(job_id, location or warehouse.settings.location, warehouse)
        raise ToolError(
            f"The query ran past the time-out of {limits.timeout_s:g} s and was cancelled in "
            "BigQuery. Make it cheaper: filter on the date first, read fewer columns or "
            "aggregate over a shorter period."
        ) from error
    except GoogleAPIError as error:
        raise ToolError(f"The query failed in BigQuery: {_message(error)}") from error
    columns = [
        ColumnInfo(
            name=field.name,
            type=field.field_type,
            mode=field.mode or "NULLABLE",
            description=field.description or "",
        )
        for field in result.schema
    ]
    scanned = int(job.total_bytes_processed or planned.bytes_processed)
    return QueryResult(
        sql=checked.sql,
        columns=columns,
        rows=[_plain(row) for row in rows[:max_rows]],
        row_count=min(len(rows), max_rows),
        truncated=len(rows) > max_rows,
        bytes_processed=scanned,
        cost_usd=_cost(scanned),
        job_id=str(job.job_id),
    )


def _cancel(job_id: str, location: str | None, warehouse: _Warehouse) -> None:
    """Cancel a job in BigQuery (jobs.cancel), so a query that ran out of time stops there."""
    try:
        warehouse.client.cancel_job(
            job_id,
            location=location,
            retry=DEFAULT_RETRY.with_deadline(_CANCEL_TIMEOUT_S),
            timeout=_CANCEL_TIMEOUT_S,
        )
    except (GoogleAPIError, OSError):  # requests' errors are OSErrors
        logger.warning("could not cancel BigQuery job %s", job_id, exc_info=True)


def _table_name(table: str, warehouse: _Warehouse) -> str:
    name = table.strip().strip("`")
    parts = name.split(".")
    if len(parts) == 1:
        parts = [warehouse.policy.default_dataset, parts[0]]
    if len(parts) == 3:
        parts = parts[1:]
    dataset, bare = parts[0], parts[-1]
    if dataset not in warehouse.policy.allowed_datasets:
        allowed = ", ".join(sorted(warehouse.policy.allowed_datasets))
        raise ToolError(f"{table!r} is outside the datasets you may read: {allowed}.")
    return f"{dataset}.{bare}"


def build_server(
    *,
    settings: WarehouseSettings | None = None,
    client: bigquery.Client | None = None,
    limits: QueryLimits | None = None,
    notes_dir: Path = NOTES_DIR,
    host: str = "127.0.0.1",
    port: int = 8302,
) -> FastMCP:
    settings = settings or get_warehouse_settings()
    limits = limits or QueryLimits()

    @asynccontextmanager
    async def lifespan(_: FastMCP) -> AsyncIterator[_Warehouse]:
        warehouse_client = client or make_client(settings)
        policy = GuardPolicy(
            project=settings.project_id,
            default_dataset=settings.dataset,
            allowed_datasets=frozenset({settings.dataset}),
            allow_time_travel=settings.allow_time_travel,
            allow_session_user=settings.allow_session_user,
        )
        yield _Warehouse(warehouse_client, settings, policy, limits)

    server = FastMCP(
        name="bigquery",
        instructions=(
            f"Read-only SQL over the BigQuery dataset `{settings.dataset}`. Find tables with "
            "list_tables, read describe_table (schema and notes) before writing SQL, check "
            "cost with dry_run_query, then run_query. Only single SELECT statements over the "
            "allowed dataset are accepted; a refused query says why, so fix it and retry."
        ),
        host=host,
        port=port,
        log_level="WARNING",
        stateless_http=True,
        json_response=True,
        lifespan=lifespan,
    )

    def warehouse_of(ctx: Context[Any, Any, Any]) -> _Warehouse:
        state: _Warehouse = ctx.request_context.lifespan_context
        return state

    @server.tool(annotations=READ_ONLY)
    async def list_tables(ctx: Context[Any, Any, Any]) -> list[TableInfo]:
        """List the tables you may query, with what each holds and its row count. Use the
        `table` value as written (dataset.table) in SQL."""
        warehouse = warehouse_of(ctx)

        def read() -> list[TableInfo]:
            tables = []
            for dataset in sorted(warehouse.policy.allowed_datasets):
                for item in warehouse.client.list_tables(dataset):
                    table = warehouse.client.get_table(item.reference)
                    tables.append(
                        TableInfo(
                            table=f"{dataset}.{item.table_id}",
                            description=table.description or "",
                            rows=table.num_rows,
                        )
                    )
            return tables

        try:
            return await anyio.to_thread.run_sync(read)
        except GoogleAPIError as error:
            raise ToolError(f"BigQuery could not list the tables: {_message(error)}") from error

    @server.tool(annotations=READ_ONLY)
    async def describe_table(
        table: Annotated[
            str, Field(description="A table name, e.g. 'posts' or 'marketplace.posts'.")
        ],
        ctx: Context[Any, Any, Any],
    ) -> TableDescription:
        """The schema of one table (columns, types, meanings) and its data-model notes: what a
        row is, how it joins, pitfalls, and example SQL. Read it before writing a query."""
        warehouse = warehouse_of(ctx)
        name = _table_name(table, warehouse)
        try:
            found = await anyio.to_thread.run_sync(warehouse.client.get_table, name)
        except GoogleAPIError as error:
            raise ToolError(
                f"There is no table {name!r}; list_tables shows the ones there are."
            ) from error
        notes_path = notes_dir / f"{name.split('.')[-1]}.md"
        notes = notes_path.read_text(encoding="utf-8") if notes_path.exists() else ""
        return TableDescription(
            table=name,
            description=found.description or "",
            columns=[
                ColumnInfo(
                    name=field.name,
                    type=field.field_type,
                    mode=field.mode or "NULLABLE",
                    description=field.description or "",
                )
                for field in found.schema
            ],
            notes=notes,
        )

    @server.tool(annotations=READ_ONLY)
    async def dry_run_query(
        sql: Annotated[str, Field(description="One BigQuery Standard SQL SELECT statement.")],
        ctx: Context[Any, Any, Any],
    ) -> DryRun:
        """Check a query without running it: whether it is allowed, which tables it reads,
        how many bytes it would process and what that costs. Nothing is billed."""
        warehouse = warehouse_of(ctx)
        checked = _checked(sql, warehouse)
        return await anyio.to_thread.run_sync(_dry_run, checked, warehouse)

    @server.tool(annotations=READ_ONLY)
    async def run_query(
        sql: Annotated[str, Field(description="One BigQuery Standard SQL SELECT statement.")],
        ctx: Context[Any, Any, Any],
        max_rows: Annotated[int, Field(ge=1, le=1000, description="Rows to return.")] = 100,
    ) -> QueryResult:
        """Run one read-only SELECT and return its rows (at most max_rows; `truncated` says
        when there were more), the column types, the bytes processed and the job id. Aggregate
        in SQL rather than fetching many rows. A refused query says why: fix it and retry."""
        warehouse = warehouse_of(ctx)
        checked = _checked(sql, warehouse)
        rows = min(max_rows, warehouse.limits.max_rows)
        return await anyio.to_thread.run_sync(_run, checked, warehouse, rows, _labels(ctx))

    return server
