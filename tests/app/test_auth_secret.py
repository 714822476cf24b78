"""The Chainlit session secret: from the environment, else generated once per data dir."""

from pathlib import Path

import pytest

from app.auth_secret import ENV_VAR, ensure_auth_secret


def test_a_secret_in_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "from-env")

    assert ensure_auth_secret(tmp_path) == "from-env"
    assert not (tmp_path / "chainlit_auth_secret").exists()


def test_without_one_a_secret_is_generated_once_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    data_dir = tmp_path / "data"

    first = ensure_auth_secret(data_dir)
    monkeypatch.delenv(ENV_VAR)
    second = ensure_auth_secret(data_dir)

    assert first == second and len(first) >= 40
    assert (data_dir / "chainlit_auth_secret").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in data_dir.iterdir()] == ["chainlit_auth_secret"]


def test_an_empty_secret_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    (tmp_path / "chainlit_auth_secret").write_text("\n")

    with pytest.raises(RuntimeError, match="empty"):
        ensure_auth_secret(tmp_path)
