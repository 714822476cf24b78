"""The parts `switchboard run` starts as child processes, and stopping them in order.

Each part is asked to stop with SIGTERM, one at a time, and given `wait_s` to finish what it
holds before it is killed: the chat first (it hands its last traces to the hub as it stops),
then the hub (it lets streams finish and writes its usage, tool-call and trace rows, and may
still be calling the model or an MCP server meanwhile), then the rest, the last started first.
"""

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "CHAT",
    "HUB",
    "STOP_MARGIN_S",
    "Child",
    "StartupError",
    "start_child",
    "stop_children",
    "stop_order",
    "wait_for",
]

CHAT = "the chat app"
HUB = "the hub"
# Beyond the drain deadline: the hub's evaluation runner gives its cases in flight 10 s after
# the drain (hub/evaluation/runner.py), then the batch writers write what they hold.
STOP_MARGIN_S = 15.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class Child:
    name: str
    process: subprocess.Popen[bytes]


class StartupError(RuntimeError):
    pass


def wait_for(url: str, child: Child, timeout_s: float) -> None:
    """Wait until `url` answers below 500; StartupError if `child` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    name = child.name
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise StartupError(
                f"{name} exited with code {child.process.returncode}; see its log above"
            )
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise StartupError(f"{name} did not answer at {url} within {timeout_s:.0f} s")


def start_child(name: str, command: list[str], cwd: Path, env: dict[str, str]) -> Child:
    # In a process group of its own: Ctrl-C in a terminal reaches only `switchboard run`,
    # which then stops the parts in order, rather than all of them at once.
    return Child(name, subprocess.Popen(command, cwd=cwd, env=env, process_group=0))


def stop_order(children: Sequence[Child]) -> list[Child]:
    """The chat, then the hub, then the others, the last started first. A replica's name
    starts with its part's (`the hub replica 2`), and ranks as that part."""

    def rank(child: Child) -> int:
        return next((at for at, part in enumerate((CHAT, HUB)) if child.name.startswith(part)), 2)

    return sorted(reversed(children), key=rank)


def stop_children(children: Sequence[Child], wait_s: float) -> list[str]:
    """Stop each child in `stop_order`, killing one that has not exited within `wait_s`;
    says on stderr what it does. The names of those that had to be killed."""
    # A second Ctrl-C or SIGTERM must not cut this short and leave parts running.
    handlers = {handled: signal.signal(handled, signal.SIG_IGN) for handled in _STOP_SIGNALS}
    try:
        killed = [child.name for child in stop_order(children) if not _stopped(child, wait_s)]
    finally:
        for handled, handler in handlers.items():
            signal.signal(handled, handler)
    if killed:
        print(f"Had to kill: {', '.join(killed)}.", file=sys.stderr, flush=True)
    return killed


def _stopped(child: Child, wait_s: float) -> bool:
    """Whether `child` stopped by itself (or had already), rather than being killed."""
    if child.process.poll() is not None:
        return True
    print(f"Stopping {child.name}...", file=sys.stderr, flush=True)
    started = time.monotonic()
    child.process.terminate()
    try:
        child.process.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()
        print(
            f"{child.name} did not stop within {wait_s:.0f} s; killed it "
            "(what it had not written yet is lost)",
            file=sys.stderr,
            flush=True,
        )
        return False
    took = time.monotonic() - started
    print(f"Stopped {child.name} in {took:.1f} s.", file=sys.stderr, flush=True)
    return True
