"""Starting outside production stays on loopback; a production start needs strong secrets."""

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.auth_secret import ENV_VAR as CHAT_SECRET
from app.auth_secret import ensure_auth_secret
from hub.core.config import DEV_APP_TOKEN, Settings, get_settings
from tests.support.servers import free_port

PLACEHOLDER = "contains the well-known placeholder"
HOW_TO_MAKE_ONE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
START_TIMEOUT_S = 60


def strong() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture(autouse=True)
def _clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No SWITCHBOARD_ or CHAINLIT_ variable from the machine, no `.env`, no cached settings."""
    for name in list(os.environ):
        if name.startswith(("SWITCHBOARD_", "CHAINLIT_")) or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def production(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    """Production settings with strong secrets, as the container runs, overridden by
    `variables`."""
    defaults = {
        "SWITCHBOARD_ENVIRONMENT": "production",
        "SWITCHBOARD_HUB_HOST": "0.0.0.0",
        "SWITCHBOARD_APP_HOST": "0.0.0.0",
        "SWITCHBOARD_APP_SERVICE_TOKEN": strong(),
        "SWITCHBOARD_SECRET_KEY": strong(),
    }
    for name, value in {**defaults, **variables}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("environment", ["development", "test"])
@pytest.mark.parametrize("variable", ["SWITCHBOARD_HUB_HOST", "SWITCHBOARD_APP_HOST"])
def test_outside_production_the_hub_and_the_chat_listen_on_loopback_only(
    environment: str, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENVIRONMENT", environment)
    for loopback in ("127.0.0.1", "127.0.1.1", "::1", "localhost"):
        monkeypatch.setenv(variable, loopback)
        assert Settings().environment == environment

    for exposed in ("0.0.0.0", "::", "192.168.1.20", "switchboard.corp.example"):
        monkeypatch.setenv(variable, exposed)
        with pytest.raises(ValueError) as refused:
            Settings()
        message = str(refused.value)
        assert f"{variable} is {exposed!r}" in message
        assert "loopback only" in message and "Set it to 127.0.0.1" in message
        assert "SWITCHBOARD_ENVIRONMENT=production" in message


WEAK_SECRETS = [
    pytest.param(DEV_APP_TOKEN, "is the development token", id="the-development-token"),
    pytest.param("x" * 40, "has only 1 different characters", id="one-character"),
    pytest.param("qrstuvwxy" * 4, "has only 9 different characters", id="nine-characters"),
    pytest.param("Kq7vX2pLm9Zt", "is 12 characters long; it needs at least 32", id="short"),
    pytest.param("CHANGEME-" + strong(), f"{PLACEHOLDER} 'changeme'", id="changeme"),
    pytest.param("our-Super-Secret-key-" + strong(), f"{PLACEHOLDER} 'secret'", id="secret"),
    pytest.param("Password1!" + strong(), f"{PLACEHOLDER} 'password'", id="password"),
]


@pytest.mark.parametrize("variable", ["SWITCHBOARD_APP_SERVICE_TOKEN", "SWITCHBOARD_SECRET_KEY"])
@pytest.mark.parametrize(("value", "reason"), WEAK_SECRETS)
def test_a_production_start_refuses_a_weak_secret_and_says_how_to_make_one(
    variable: str, value: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    production(monkeypatch, **{variable: value})

    with pytest.raises(ValueError) as refused:
        Settings()

    message = str(refused.value)
    assert f"{variable} {reason}" in message
    assert HOW_TO_MAKE_ONE in message


def test_a_production_start_refuses_a_missing_secret_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production(monkeypatch)
    monkeypatch.delenv("SWITCHBOARD_SECRET_KEY")

    with pytest.raises(ValueError, match="SWITCHBOARD_SECRET_KEY is not set") as refused:
        Settings()

    assert HOW_TO_MAKE_ONE in str(refused.value)


def test_in_production_the_chat_secret_comes_from_the_environment_never_a_generated_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    production(monkeypatch)
    data_dir = tmp_path / "data"
    assert Settings().hub_host == "0.0.0.0"

    with pytest.raises(ValueError) as refused:
        ensure_auth_secret(data_dir)
    assert f"{CHAT_SECRET} is not set" in str(refused.value)
    assert HOW_TO_MAKE_ONE in str(refused.value)
    assert not data_dir.exists()

    monkeypatch.setenv(CHAT_SECRET, "changeme-" + strong())
    with pytest.raises(ValueError, match=f"{CHAT_SECRET} contains the well-known placeholder"):
        ensure_auth_secret(data_dir)

    chosen = strong()
    monkeypatch.setenv(CHAT_SECRET, chosen)
    assert ensure_auth_secret(data_dir) == chosen
    assert not data_dir.exists()


def _child_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SWITCHBOARD_", "CHAINLIT_"))
        and name not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(SWITCHBOARD_DATA_DIR=str(tmp_path / "data"), **variables)
    return env


def _run_until_exit(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run `command` in its own process group; on time-out stop the whole group and fail."""
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stderr=subprocess.PIPE, start_new_session=True, text=True
    )
    try:
        _, stderr = process.communicate(timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"{command[0]} was still running after {START_TIMEOUT_S} s")
    return process.returncode, stderr


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param(DEV_APP_TOKEN, "is the development token", id="the-development-token"),
        pytest.param("changeme" * 5, f"{PLACEHOLDER} 'changeme'", id="changeme"),
    ],
)
def test_a_production_hub_process_with_a_default_token_exits_with_the_reason(
    token: str, reason: str, tmp_path: Path
) -> None:
    env = _child_environment(
        tmp_path,
        SWITCHBOARD_ENVIRONMENT="production",
        SWITCHBOARD_APP_SERVICE_TOKEN=token,
        SWITCHBOARD_SECRET_KEY=strong(),
    )
    command = [sys.executable, "-m", "uvicorn", "--factory", "hub.main:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(free_port())]

    returncode, stderr = _run_until_exit(command, env, cwd=tmp_path)

    assert returncode != 0
    assert f"SWITCHBOARD_APP_SERVICE_TOKEN {reason}" in stderr
    assert HOW_TO_MAKE_ONE in stderr


def test_switchboard_run_in_production_without_a_chat_secret_stops_before_touching_data(
    tmp_path: Path,
) -> None:
    env = _child_environment(
        tmp_path,
        SWITCHBOARD_ENVIRONMENT="production",
        SWITCHBOARD_HUB_HOST="0.0.0.0",
        SWITCHBOARD_APP_HOST="0.0.0.0",
        SWITCHBOARD_APP_SERVICE_TOKEN=strong(),
        SWITCHBOARD_SECRET_KEY=strong(),
        SWITCHBOARD_HUB_PORT=str(free_port()),
        SWITCHBOARD_APP_PORT=str(free_port()),
        SWITCHBOARD_LOCAL_MODEL_PORT=str(free_port()),
        SWITCHBOARD_HANDBOOK_PORT=str(free_port()),
    )
    switchboard = str(Path(sys.executable).with_name("switchboard"))

    returncode, stderr = _run_until_exit([switchboard, "run"], env, cwd=tmp_path)

    assert returncode != 0
    assert f"error: {CHAT_SECRET} is not set" in stderr
    assert HOW_TO_MAKE_ONE in stderr
    # Nothing migrated, no demo user seeded, no secret generated into the data directory.
    assert not (tmp_path / "data").exists()
