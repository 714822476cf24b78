"""The gateway comparison's own readings: the CPU time of a process tree, from a /proc laid
out in a folder, and the reply text of real answers from the scripted upstream."""

import os
from pathlib import Path

import httpx
import pytest

from bench.gateway_peers import process_tree_cpu_s, reply_text
from tests.support.upstream import ScriptedUpstream


def _process(proc: Path, pid: int, command: str, ppid: int, ticks: tuple[int, ...]) -> None:
    # Fields 3 to 17 of proc(5): state, ppid, pgrp, session, tty, tpgid, flags, four fault
    # counters, utime, stime, cutime, cstime; then the rest, which is not read.
    fields = ["S", str(ppid), *["0"] * 9, *map(str, ticks), "20", "0", "1"]
    (proc / str(pid)).mkdir()
    (proc / str(pid) / "stat").write_text(f"{pid} ({command}) {' '.join(fields)}\n")


def test_process_tree_cpu_counts_the_process_and_its_descendants_only(tmp_path: Path) -> None:
    _process(tmp_path, 1, "init", 0, (500, 500, 9000, 9000))
    _process(tmp_path, 40, "node) (x", 1, (120, 30, 0, 0))  # a command name with ") ("
    _process(tmp_path, 41, "worker", 40, (7, 3, 2, 1))
    _process(tmp_path, 42, "grandchild", 41, (5, 0, 0, 0))
    _process(tmp_path, 50, "other", 1, (1000, 1000, 0, 0))
    (tmp_path / "self").mkdir()  # not a process: skipped
    expected_ticks = (120 + 30) + (7 + 3 + 2 + 1) + 5

    assert process_tree_cpu_s(40, tmp_path) == pytest.approx(
        expected_ticks / os.sysconf("SC_CLK_TCK")
    )
    assert process_tree_cpu_s(42, tmp_path) == pytest.approx(5 / os.sysconf("SC_CLK_TCK"))


@pytest.mark.parametrize("stream", [False, True])
def test_reply_text_reads_the_upstreams_answer(stream: bool) -> None:
    reply = "the quick brown fox jumps"
    with ScriptedUpstream() as upstream:
        upstream.script(reply=reply)
        request = {
            "model": "scripted",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": stream,
            "stream_options": {"include_usage": True} if stream else None,
        }
        response = httpx.post(upstream.url + "/chat/completions", json=request)

    assert response.status_code == 200
    assert reply_text(response.content, stream) == reply
