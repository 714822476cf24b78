"""Other gateways to measure the hub against: LiteLLM's proxy and Portkey's gateway, each
installed once into a folder of its own outside the project's environment and run in its own
process, in front of the same upstream.

LiteLLM's proxy comes from the Python package `litellm[proxy]` in a virtual environment of its
own; Portkey's gateway from the npm package `@portkey-ai/gateway`, run with node. pip and npm
use the registries they are configured with. A folder whose install finished holds an
`installed` file and is reused as it is.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from bench.gateway_overhead import BenchError, _free_port, run_server

__all__ = [
    "DEFAULT_FOLDER",
    "LITELLM_KEY",
    "LITELLM_VERSION",
    "PORTKEY_VERSION",
    "install_litellm",
    "install_portkey",
    "start_litellm",
    "start_portkey",
]

# The newest litellm whose `proxy` extra installs from the registry this project uses.
LITELLM_VERSION = "1.106.12"
PORTKEY_VERSION = "1.15.2"
LITELLM_KEY = "sk-bench-litellm-key"
DEFAULT_FOLDER = Path.home() / ".cache" / "switchboard-bench" / "peers"
# Makes Node's servers listen on the loopback interface only: Portkey's gateway has no option
# for the address and would otherwise listen on every interface.
LOOPBACK_ONLY_JS = """\
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" && typeof args[1] !== "string") {
    args.splice(1, args[1] === undefined ? 1 : 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};
"""


def _install(folder: Path, what: str, steps: list[list[str]]) -> Path:
    """Run `steps` in `folder` unless an earlier install there finished; return `folder`."""
    done = folder / "installed"
    if done.exists():
        print(f"Using {what} installed in {folder}.", flush=True)
        return folder
    print(f"Installing {what} into {folder} (once; later runs reuse it).", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for step in steps:
        print("  " + " ".join(step), flush=True)
        # What the installers print on success is noise here; their errors go to stderr.
        if subprocess.run(step, cwd=folder, stdout=subprocess.DEVNULL).returncode != 0:
            raise BenchError(f"installing {what} failed at: {' '.join(step)}")
    done.write_text(what + "\n")
    return folder


def install_litellm(root: Path = DEFAULT_FOLDER) -> Path:
    """A virtual environment with LiteLLM's proxy under `root`; return its folder."""
    folder = root / f"litellm-{LITELLM_VERSION}"
    pip = str(folder / "bin" / "pip")
    return _install(
        folder,
        f"LiteLLM's proxy (litellm[proxy]=={LITELLM_VERSION})",
        [
            [sys.executable, "-m", "venv", str(folder)],
            [pip, "install", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"],
        ],
    )


def install_portkey(root: Path = DEFAULT_FOLDER) -> Path:
    """Portkey's gateway in an npm folder under `root`; return the folder."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise BenchError("Portkey's gateway needs node and npm on the PATH")
    folder = root / f"portkey-{PORTKEY_VERSION}"
    return _install(
        folder,
        f"Portkey's gateway (@portkey-ai/gateway@{PORTKEY_VERSION})",
        [
            ["npm", "init", "--yes", "--silent"],
            ["npm", "install", "--no-audit", "--no-fund", f"@portkey-ai/gateway@{PORTKEY_VERSION}"],
        ],
    )


def _plain_env(**more: str) -> dict[str, str]:
    """An environment with none of the project's settings in it."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    return {**{name: os.environ[name] for name in keep if name in os.environ}, **more}


@contextmanager
def start_litellm(
    folder: Path, workdir: Path, *, model: str, upstream_url: str, upstream_model: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """LiteLLM's proxy from `folder` serving `model` as the OpenAI-compatible upstream's
    `upstream_model`, with one worker and LITELLM_KEY as its master key; yield its base URL
    and its process."""
    config = workdir / "litellm.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_list": [
                    {
                        "model_name": model,
                        "litellm_params": {
                            "model": f"openai/{upstream_model}",
                            "api_base": upstream_url,
                            "api_key": "unused",
                        },
                    }
                ],
                "general_settings": {"master_key": LITELLM_KEY},
            }
        )
    )
    port = _free_port()
    command = [
        str(folder / "bin" / "litellm"),
        *("--config", str(config), "--host", "127.0.0.1", "--port", str(port)),
        *("--num_workers", "1"),
    ]
    # The price list ships with the package: no fetch of a newer one at start-up.
    env = _plain_env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    url = f"http://127.0.0.1:{port}"
    # Its banner goes nowhere; its errors go to stderr.
    with run_server(
        command, health_url=url + "/health/liveliness", cwd=workdir, env=env, quiet=True
    ) as process:
        yield url, process


@contextmanager
def start_portkey(folder: Path, workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Portkey's gateway from `folder` under node, without its console; yield its base URL and
    its process. It takes the provider and the upstream's URL in each request's headers.

    Under node, its version here answers every streamed call through the `openai` provider with
    a 500: it adds headers to the upstream's response, whose headers are immutable there
    (Portkey-AI/gateway issues 1389 and 1550)."""
    preload = workdir / "loopback-only.cjs"
    preload.write_text(LOOPBACK_ONLY_JS)
    server = folder / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    port = _free_port()
    command = ["node", "--require", str(preload), str(server), f"--port={port}", "--headless"]
    url = f"http://127.0.0.1:{port}"
    # Its banner clears the terminal: what it prints goes nowhere.
    with run_server(
        command, health_url=url, cwd=workdir, env=_plain_env(NODE_ENV="production"), quiet=True
    ) as process:
        yield url, process
