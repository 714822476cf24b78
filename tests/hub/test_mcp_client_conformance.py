"""The MCP conformance suite's client scenarios (its core suite) against the hub's MCP client:
discovery as registering a server does it, tool calls through the hub's session pool
(tests/support/conformance_client.py). The baseline of expected failures, with the reason
for each, is tests/mcp_servers/conformance/hub-client.yml; the suite fails the run on any
other failure and on a baseline entry that passes."""

import shlex
import sys
from pathlib import Path

from tests.support.conformance import install_conformance, run_suite
from tests.support.servers import REPO_ROOT

BASELINE = REPO_ROOT / "tests" / "mcp_servers" / "conformance" / "hub-client.yml"


def test_the_hubs_mcp_client_passes_the_conformance_suite_but_its_baseline(
    tmp_path: Path,
) -> None:
    # The suite appends the URL of the server it starts for each scenario.
    command = shlex.join(
        ["env", f"PYTHONPATH={REPO_ROOT}", sys.executable, "-m", "tests.support.conformance_client"]
    )

    run = run_suite(
        install_conformance(),
        "client",
        ["--command", command, "--suite", "core"],
        baseline=BASELINE,
        output_dir=tmp_path / "results",
    )

    print(f"hub client: passed {run.passed}; failed {run.failed}")
    assert run.returncode == 0, run.output
    assert {"initialize", "tools_call"} <= set(run.passed), run.output
