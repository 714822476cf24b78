"""`switchboard run --replicas N` refuses what several replicas cannot share, before starting
anything, and says what to set; replicas stop in the order the launcher's parts do."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.child_processes import CHAT, HUB, Child, stop_order
from hub.replicas import PROXY

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _run_replicas(
    tmp_path: Path, replicas: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SWITCHBOARD_", "CHAINLIT_"))
        and name not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(SWITCHBOARD_ENVIRONMENT="test", SWITCHBOARD_DATA_DIR=str(tmp_path / "data"))
    env.update(variables)
    switchboard = str(Path(sys.executable).with_name("switchboard"))
    return subprocess.run(
        [switchboard, "run", "--replicas", replicas],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_several_replicas_on_sqlite_are_refused_with_what_to_set(tmp_path: Path) -> None:
    result = _run_replicas(tmp_path, "2")
    assert result.returncode == 1
    assert "error: several replicas share one database: set DATABASE_URL" in result.stderr
    assert not (tmp_path / "data").exists()


def test_several_replicas_without_redis_are_refused_with_what_to_set(tmp_path: Path) -> None:
    result = _run_replicas(tmp_path, "2", DATABASE_URL=POSTGRES)
    assert result.returncode == 1
    assert "set REDIS_URL" in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("replicas", ["0", "17"])
def test_a_count_of_replicas_out_of_range_is_refused(tmp_path: Path, replicas: str) -> None:
    result = _run_replicas(tmp_path, replicas)
    assert result.returncode == 1
    assert f"--replicas takes 1 to 16, not {replicas}" in result.stderr


def test_chat_replicas_stop_first_then_hub_replicas_then_the_proxy() -> None:
    names = [f"{HUB} replica 1", f"{HUB} replica 2", PROXY, "an MCP server"]
    names += [f"{CHAT} replica 1", f"{CHAT} replica 2"]
    children = [Child(name, None) for name in names]  # type: ignore[arg-type]  # never started
    assert [child.name for child in stop_order(children)] == [
        f"{CHAT} replica 2",
        f"{CHAT} replica 1",
        f"{HUB} replica 2",
        f"{HUB} replica 1",
        "an MCP server",
        PROXY,
    ]
