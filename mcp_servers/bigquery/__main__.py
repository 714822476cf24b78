"""`python -m mcp_servers.bigquery`: serve the guarded BigQuery tools over streamable HTTP at
`/mcp`, against the warehouse `SWITCHBOARD_BIGQUERY_*` points at (the local emulator by default)."""

import argparse
from collections.abc import Sequence

from mcp_servers.bigquery.server import QueryLimits, build_server

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    defaults = QueryLimits()
    parser = argparse.ArgumentParser(
        prog="python -m mcp_servers.bigquery",
        description="Serve read-only, guarded BigQuery tools as an MCP server.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8302, help="port to listen on")
    parser.add_argument(
        "--max-bytes", type=int, default=defaults.max_bytes, help="refuse queries over this"
    )
    parser.add_argument(
        "--max-rows", type=int, default=defaults.max_rows, help="rows returned to the model"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=defaults.timeout_s,
        help="seconds a query may run before it is cancelled in BigQuery",
    )
    args = parser.parse_args(argv)
    limits = QueryLimits(max_bytes=args.max_bytes, max_rows=args.max_rows, timeout_s=args.timeout)
    build_server(limits=limits, host=args.host, port=args.port).run("streamable-http")


if __name__ == "__main__":
    main()
