"""Asking the person before an expensive query runs.

When a run has a `QueryApproval`, every call of a server's `run_query` tool is first priced
with the same server's `dry_run_query`. A query that would scan more than the person's
threshold stops the run (a LangGraph interrupt) with an `ApprovalRequest` saying what it would
scan and cost; the run goes on when the person answers (`AgentRunner.resume`): approved, the
tools run; declined, the run ends with a message saying nothing ran.
"""

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ApprovalRequest",
    "PendingQuery",
    "QueryApproval",
    "declined_message",
    "format_bytes",
]


@dataclass(frozen=True, slots=True)
class QueryApproval:
    """Ask before a query that would scan more than `threshold_bytes`."""

    threshold_bytes: int
    run_tool: str = "run_query"
    estimate_tool: str = "dry_run_query"


@dataclass(frozen=True, slots=True)
class PendingQuery:
    call_id: str
    server: str
    tool: str
    sql: str
    bytes_processed: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """What a run waits for: the person's yes or no to these queries."""

    queries: tuple[PendingQuery, ...]
    threshold_bytes: int

    @property
    def total_bytes(self) -> int:
        return sum(query.bytes_processed for query in self.queries)

    @property
    def total_cost_usd(self) -> float:
        return sum(query.cost_usd for query in self.queries)

    def summary(self) -> str:
        what = "This query" if len(self.queries) == 1 else f"These {len(self.queries)} queries"
        return (
            f"{what} would scan {format_bytes(self.total_bytes)} "
            f"(about ${self.total_cost_usd:,.2f}), more than your limit of "
            f"{format_bytes(self.threshold_bytes)} without asking."
        )

    def to_state(self) -> dict[str, Any]:
        """As the checkpointer stores it (plain data)."""
        return {
            "queries": [
                {
                    "call_id": q.call_id,
                    "server": q.server,
                    "tool": q.tool,
                    "sql": q.sql,
                    "bytes_processed": q.bytes_processed,
                    "cost_usd": q.cost_usd,
                }
                for q in self.queries
            ],
            "threshold_bytes": self.threshold_bytes,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> "ApprovalRequest":
        return cls(
            queries=tuple(PendingQuery(**query) for query in data["queries"]),
            threshold_bytes=int(data["threshold_bytes"]),
        )


def format_bytes(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def declined_message(request: ApprovalRequest) -> str:
    what = "the query" if len(request.queries) == 1 else "the queries"
    return (
        f"I did not run {what}: you declined it ({format_bytes(request.total_bytes)}, about "
        f"${request.total_cost_usd:,.2f}). Nothing was run or billed. Ask a narrower question "
        "(fewer days, fewer columns) and I will look for a cheaper query."
    )
