"""A stand-in for BigQuery's REST API, served over real HTTP on loopback.

The local emulator reports no referenced tables and finishes every query at once, so the
checks that rest on BigQuery's own answers (the dry run's list of tables, a job that runs past
its time-out) are tried against this instead, through the official client: point
`WarehouseSettings(emulator=standin.base_url)` at it. A dry run answers with the tables it is
told to report; a real job (in location US) never finishes; every job and every `jobs.cancel`
call is recorded.
"""

import asyncio
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.servers import ThreadedServer

__all__ = ["StandInBigQuery"]

PREFIX = "/bigquery/v2/projects/{project}"
LOCATION = "US"


@dataclass
class StandInBigQuery:
    """`referenced_tables` are "project.dataset.table" names every dry run reports."""

    referenced_tables: list[str] = field(default_factory=list)
    bytes_processed: int = 1024
    dry_runs: list[str] = field(default_factory=list)  # the SQL of each dry run
    jobs: list[str] = field(default_factory=list)  # the ids of real jobs, in order
    cancelled: list[str] = field(default_factory=list)
    cancel_locations: list[str | None] = field(default_factory=list)
    _server: ThreadedServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "use StandInBigQuery as a context manager"
        return self._server.base_url

    def __enter__(self) -> Self:
        app = Starlette(
            routes=[
                Route(f"{PREFIX}/jobs", self._insert, methods=["POST"]),
                Route(f"{PREFIX}/jobs/{{job_id}}", self._get, methods=["GET"]),
                Route(f"{PREFIX}/jobs/{{job_id}}/cancel", self._cancel, methods=["POST"]),
                Route(f"{PREFIX}/queries/{{job_id}}", self._results, methods=["GET"]),
            ]
        )
        self._server = ThreadedServer(app).__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.__exit__(exc_type, exc, tb)

    def _job(self, project: str, job_id: str, config: dict[str, Any]) -> dict[str, Any]:
        done = config.get("dryRun") or job_id in self.cancelled
        status: dict[str, Any] = {"state": "DONE" if done else "RUNNING"}
        if job_id in self.cancelled:
            status["errorResult"] = {"reason": "stopped", "message": "Job was cancelled"}
        tables = []
        for name in self.referenced_tables:
            table_project, dataset, table = name.split(".")
            tables.append({"projectId": table_project, "datasetId": dataset, "tableId": table})
        return {
            "kind": "bigquery#job",
            "jobReference": {"projectId": project, "jobId": job_id, "location": LOCATION},
            "configuration": config,
            "status": status,
            "statistics": {
                "totalBytesProcessed": str(self.bytes_processed),
                "query": {
                    "statementType": "SELECT",
                    "totalBytesProcessed": str(self.bytes_processed),
                    "referencedTables": tables,
                },
            },
        }

    async def _insert(self, request: Request) -> JSONResponse:
        body = await request.json()
        project = request.path_params["project"]
        config = body["configuration"]
        job_id = body.get("jobReference", {}).get("jobId", "dry-run")
        if config.get("dryRun"):
            self.dry_runs.append(config["query"]["query"])
        else:
            self.jobs.append(job_id)
        return JSONResponse(self._job(project, job_id, config))

    async def _get(self, request: Request) -> JSONResponse:
        project, job_id = request.path_params["project"], request.path_params["job_id"]
        return JSONResponse(self._job(project, job_id, {"query": {}}))

    async def _results(self, request: Request) -> JSONResponse:
        # Like BigQuery, hold the call a little while the job runs rather than answer at once.
        await asyncio.sleep(min(float(request.query_params.get("timeoutMs", 0)) / 1000, 0.2))
        return JSONResponse(
            {
                "kind": "bigquery#getQueryResultsResponse",
                "jobReference": {
                    "projectId": request.path_params["project"],
                    "jobId": request.path_params["job_id"],
                    "location": LOCATION,
                },
                "jobComplete": False,
            }
        )

    async def _cancel(self, request: Request) -> JSONResponse:
        project, job_id = request.path_params["project"], request.path_params["job_id"]
        self.cancelled.append(job_id)
        self.cancel_locations.append(request.query_params.get("location"))
        job = self._job(project, job_id, {"query": {}})
        return JSONResponse({"kind": "bigquery#jobCancelResponse", "job": job})
