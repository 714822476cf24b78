"""`python -m mcp_servers.datamodel`: serve the data-model notes over streamable HTTP at `/mcp`."""

import argparse
from collections.abc import Sequence
from pathlib import Path

from mcp_servers.datamodel.server import build_server

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mcp_servers.datamodel",
        description="Serve the marketplace data-model notes as an MCP server "
        "(streamable HTTP at /mcp).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8301, help="port to listen on")
    parser.add_argument(
        "--docs-dir",
        type=Path,
        default=None,
        help="directory of *.md table notes (default: the notes shipped with the package)",
    )
    args = parser.parse_args(argv)
    try:
        server = build_server(args.docs_dir, host=args.host, port=args.port)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    server.run("streamable-http")


if __name__ == "__main__":
    main()
