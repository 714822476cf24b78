"""The MCP conformance suite against each shipped MCP server, run as `python -m` runs it.

Each server has a baseline of scenarios it is expected to fail (tests/mcp_servers/conformance,
with the reason for each): the suite fails the run on any other failure and on a baseline
entry that passes. The suite and the Node 22 it needs are installed once, outside the project
(tests/support/conformance.py).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_servers.bigquery.emulator import EmulatorProcess
from tests.support.conformance import Installed, install_conformance, run_suite
from tests.support.servers import served_module

BASELINES = Path(__file__).parent / "conformance"
# What every shipped server must pass: the core of the protocol and its transport's safety.
CORE = {
    "server-initialize",
    "ping",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-error",
    "resources-list",
    "prompts-list",
    "dns-rebinding-protection",
}


@pytest.fixture(scope="session")
def conformance() -> Installed:
    return install_conformance()


@pytest.fixture
def handbook_url(tmp_path: Path) -> Iterator[str]:
    with served_module("mcp_servers.handbook", tmp_path / "server.log") as port:
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.fixture
def datamodel_url(tmp_path: Path) -> Iterator[str]:
    with served_module("mcp_servers.datamodel", tmp_path / "server.log") as port:
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.fixture
def bigquery_url(tmp_path: Path, warehouse: EmulatorProcess) -> Iterator[str]:
    env = {
        "SWITCHBOARD_BIGQUERY_EMULATOR": warehouse.url,
        "SWITCHBOARD_BIGQUERY_PROJECT": warehouse.project,
        "SWITCHBOARD_BIGQUERY_DATASET": warehouse.dataset,
    }
    with served_module("mcp_servers.bigquery", tmp_path / "server.log", env=env) as port:
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.mark.parametrize("server", ["handbook", "datamodel", "bigquery"])
def test_each_shipped_server_passes_the_conformance_suite_but_its_baseline(
    server: str, conformance: Installed, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url: str = request.getfixturevalue(f"{server}_url")

    run = run_suite(
        conformance,
        "server",
        ["--url", url],
        baseline=BASELINES / f"{server}.yml",
        output_dir=tmp_path / "results",
    )

    print(f"{server}: passed {run.passed}; failed {run.failed}")
    assert run.returncode == 0, run.output
    assert CORE <= set(run.passed), run.output
