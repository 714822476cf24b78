"""Which checkpointer a database URL gets, and where it keeps its data."""

from pathlib import Path

import pytest
from langchain_core.runnables import RunnableConfig

from agents.checkpoint import open_checkpointer, postgres_conninfo, sqlite_checkpoint_path

pytestmark = pytest.mark.anyio

NOBODY: RunnableConfig = {"configurable": {"thread_id": "nobody"}}


def test_sqlite_checkpoints_go_to_a_file_next_to_the_database() -> None:
    assert sqlite_checkpoint_path("sqlite:///data/switchboard.db") == (
        "data/switchboard.checkpoints.sqlite"
    )
    assert sqlite_checkpoint_path("sqlite:////srv/sb/hub.db") == "/srv/sb/hub.checkpoints.sqlite"
    assert sqlite_checkpoint_path("sqlite:///:memory:") == ":memory:"


def test_a_sqlalchemy_postgres_url_becomes_a_libpq_uri_with_its_password() -> None:
    url = "postgresql+psycopg://sb:s3cret@db.internal:5433/switchboard?sslmode=require"
    assert postgres_conninfo(url) == (
        "postgresql://sb:s3cret@db.internal:5433/switchboard?sslmode=require"
    )


async def test_opening_a_sqlite_checkpointer_creates_its_file_and_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'hub.db'}"
    async with open_checkpointer(url) as checkpointer:
        assert await checkpointer.aget_tuple(NOBODY) is None
    assert (tmp_path / "nested" / "hub.checkpoints.sqlite").is_file()


async def test_opening_a_checkpointer_works_on_every_supported_database(database_url: str) -> None:
    for _ in range(2):  # setup() is safe to run again on tables that exist
        async with open_checkpointer(database_url) as checkpointer:
            assert await checkpointer.aget_tuple(NOBODY) is None


async def test_a_database_without_a_checkpointer_is_refused() -> None:
    with pytest.raises(ValueError, match="no checkpointer for 'mysql'"):
        async with open_checkpointer("mysql+pymysql://sb@127.0.0.1/sb"):
            pass
