"""`python -m mcp_servers.handbook`: serve the handbook over streamable HTTP at `/mcp`."""

import argparse
from collections.abc import Sequence
from pathlib import Path

from mcp_servers.handbook.server import build_server

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mcp_servers.handbook",
        description="Serve the Switchboard handbook as an MCP server (streamable HTTP at /mcp).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8300, help="port to listen on")
    parser.add_argument(
        "--docs-dir",
        type=Path,
        default=None,
        help="directory of *.md handbook pages (default: the pages shipped with the package)",
    )
    args = parser.parse_args(argv)
    try:
        server = build_server(args.docs_dir, host=args.host, port=args.port)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    server.run("streamable-http")


if __name__ == "__main__":
    main()
