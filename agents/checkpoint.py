"""Where conversations are kept between turns and across restarts: a LangGraph checkpointer
on the hub's database URL.

SQLite: a file of its own next to the hub's (`data/switchboard.db` →
`data/switchboard.checkpoints.sqlite`). SQLite lets one writer at a time into a file, and the
checkpointer writes after every step of every run; apart, it never waits on the hub's writes
(usage, traces) nor they on it, and the hub's schema stays Alembic's alone. PostgreSQL: the
hub's own database (tables `checkpoints`, `checkpoint_blobs`, `checkpoint_writes`,
`checkpoint_migrations`, created by `setup()`), through a small connection pool.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import make_url

__all__ = ["open_checkpointer", "postgres_conninfo", "sqlite_checkpoint_path"]

POOL_MAX_SIZE = 10


def sqlite_checkpoint_path(database_url: str) -> str:
    """The checkpoint file for a `sqlite:///...` URL (":memory:" stays in memory)."""
    database = make_url(database_url).database
    if not database or database == ":memory:":
        return ":memory:"
    path = Path(database)
    return str(path.with_name(f"{path.stem}.checkpoints.sqlite"))


def postgres_conninfo(database_url: str) -> str:
    """A libpq connection URI for a SQLAlchemy `postgresql+psycopg://` URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@asynccontextmanager
async def open_checkpointer(database_url: str) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """`async with open_checkpointer(url) as checkpointer:` ready to use (tables created)."""
    backend = make_url(database_url).get_backend_name()
    if backend == "sqlite":
        path = sqlite_checkpoint_path(database_url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(path) as sqlite_saver:
            await sqlite_saver.setup()
            yield sqlite_saver
    elif backend == "postgresql":
        pool = AsyncConnectionPool(
            postgres_conninfo(database_url),
            min_size=1,
            max_size=POOL_MAX_SIZE,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        )
        async with pool:
            # The pool's connections return dict rows (kwargs above), as the saver needs.
            saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            await saver.setup()
            yield saver
    else:
        raise ValueError(f"no checkpointer for {backend!r} URLs; use SQLite or PostgreSQL")
