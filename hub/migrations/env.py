"""Alembic environment: runs the hub's migrations against the configured URL."""

import zlib

from alembic import context
from sqlalchemy import engine_from_config, pool, text
from sqlmodel import SQLModel

import hub.models.agent
import hub.models.audit
import hub.models.eval_gate
import hub.models.eval_judge
import hub.models.evaluation
import hub.models.experiment
import hub.models.feedback
import hub.models.live_judge
import hub.models.mcp_server
import hub.models.prompt
import hub.models.service
import hub.models.share
import hub.models.trace
import hub.models.usage
import hub.models.user
import hub.models.web_session  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata

# Every hub replica migrates as it starts. On PostgreSQL they take turns under this lock,
# held until the migrations commit, so the next one finds the schema already up to date.
MIGRATIONS_LOCK = zlib.crc32(b"switchboard: database migrations")


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # The chat tables (migration 0002) follow Chainlit's schema and have no SQLModel classes;
    # keep autogenerate from proposing to drop them.
    return type_ != "table" or name in target_metadata.tables


def run_migrations_online() -> None:
    connectable = engine_from_config(
        context.config.get_section(context.config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_name=include_name,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                connection.execute(lock, {"key": MIGRATIONS_LOCK})
            context.run_migrations()


run_migrations_online()
