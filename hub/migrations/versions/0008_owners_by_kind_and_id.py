"""owners as (kind, id): a key for each person, owner and runner pairs on agents and traces;
the chat knows people by their key too

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 10:20:00.000000
"""

import uuid
from collections.abc import Callable, Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (kind, id) of what nobody owns any more: only admins see it.
_NOBODY = ("user", "")

_users = sa.table(
    "hub_user",
    sa.column("id", sa.Integer),
    sa.column("username", sa.String),
    sa.column("key", sa.String),
)
_services = sa.table("service", sa.column("id", sa.Integer), sa.column("name", sa.String))
_agents = sa.table("agent", *(sa.column(c, sa.String) for c in ("owner", "owner_kind", "owner_id")))
_runs = sa.table(
    "trace_run",
    *(sa.column(c, sa.String) for c in ("agent_owner", "agent_owner_kind", "agent_owner_id")),
    *(sa.column(c, sa.String) for c in ("user", "user_kind", "user_id")),
)

# The chat's tables (Chainlit's, made in 0002): a person there was their username, and is now
# their key, so that a name given to someone else later brings none of the conversations.
_chat_users = sa.table("users", sa.column("identifier", sa.Text))
_threads = sa.table("threads", sa.column("userIdentifier", sa.Text))

OwnerOf = Callable[[str], tuple[str, str]]


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _pair_columns(name: str) -> list[sa.Column[str]]:
    """`<name>_kind` and `<name>_id`, nobody's until the backfill sets them."""
    return [
        sa.Column(f"{name}_kind", _text(20), nullable=False, server_default=_NOBODY[0]),
        sa.Column(f"{name}_id", _text(64), nullable=False, server_default=_NOBODY[1]),
    ]


def _add_columns() -> None:
    with op.batch_alter_table("hub_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key", _text(32), nullable=True))
    with op.batch_alter_table("agent", schema=None) as batch_op:
        for column in _pair_columns("owner"):
            batch_op.add_column(column)
        batch_op.create_index(batch_op.f("ix_agent_owner_id"), ["owner_id"], unique=False)
    with op.batch_alter_table("trace_run", schema=None) as batch_op:
        for column in _pair_columns("agent_owner") + _pair_columns("user"):
            batch_op.add_column(column)
        batch_op.create_index(
            batch_op.f("ix_trace_run_agent_owner_id"), ["agent_owner_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_trace_run_user_id"), ["user_id"], unique=False)


def _give_keys(connection: sa.Connection) -> dict[str, str]:
    """A fresh key for every person; their keys by username."""
    keys: dict[str, str] = {}
    for user_id, username in connection.execute(sa.select(_users.c.id, _users.c.username)):
        keys[username] = uuid.uuid4().hex
        connection.execute(_users.update().where(_users.c.id == user_id).values(key=keys[username]))
    return keys


def _rename_chat_people(connection: sa.Connection, keys: dict[str, str]) -> None:
    for username, key in keys.items():
        connection.execute(
            _chat_users.update().where(_chat_users.c.identifier == username).values(identifier=key)
        )
        connection.execute(
            _threads.update()
            .where(_threads.c.userIdentifier == username)
            .values(userIdentifier=key)
        )


def _owner_lookup(connection: sa.Connection, keys: dict[str, str]) -> OwnerOf:
    service_ids = {
        name: str(service_id)
        for service_id, name in connection.execute(sa.select(_services.c.id, _services.c.name))
    }

    def owner_of(name: str) -> tuple[str, str]:
        # Until now owners were compared by name, so a name held by both a person and a service
        # stood for both. It goes to the person: people make agents in the Builder and run them
        # from the chat (which wrote the person's name as the runner), while a service makes
        # agents only through the API, so the person is by far the likelier owner.
        if name in keys:
            return "user", keys[name]
        if name in service_ids:
            return "service", service_ids[name]
        return _NOBODY

    return owner_of


def _fill(connection: sa.Connection, table: sa.TableClause, name: str, owner_of: OwnerOf) -> None:
    """Set `<name>_kind` and `<name>_id` from the name in column `name`, one name at a time."""
    for (value,) in connection.execute(sa.select(table.c[name]).distinct()):
        kind, owner_id = owner_of(value)
        connection.execute(
            table.update()
            .where(table.c[name] == value)
            .values({f"{name}_kind": kind, f"{name}_id": owner_id})
        )


def upgrade() -> None:
    _add_columns()
    connection = op.get_bind()
    keys = _give_keys(connection)
    _rename_chat_people(connection, keys)
    owner_of = _owner_lookup(connection, keys)
    _fill(connection, _agents, "owner", owner_of)
    _fill(connection, _runs, "agent_owner", owner_of)
    _fill(connection, _runs, "user", owner_of)
    with op.batch_alter_table("hub_user", schema=None) as batch_op:
        batch_op.alter_column("key", existing_type=_text(32), nullable=False)
        batch_op.create_index(batch_op.f("ix_hub_user_key"), ["key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("trace_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trace_run_user_id"))
        batch_op.drop_index(batch_op.f("ix_trace_run_agent_owner_id"))
        for column in ("user_id", "user_kind", "agent_owner_id", "agent_owner_kind"):
            batch_op.drop_column(column)
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_owner_id"))
        batch_op.drop_column("owner_id")
        batch_op.drop_column("owner_kind")
    with op.batch_alter_table("hub_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hub_user_key"))
        batch_op.drop_column("key")
