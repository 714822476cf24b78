"""share search: a full-text index of shared conversations, for the people they are shared with

`share_search_entry` holds one row per indexed text of a share link's snapshot: its title (no
step number) and each step's input and text (a tool call's arguments, such as the analyst's
SQL, and its result), numbered from 1 as the shared page numbers them. A trigger on
`share_link` fills it as links are made (a snapshot never changes afterwards; revoked and
expired links are left out when searching); links that exist already are indexed here. SQLite
indexes the entries with FTS5 (external content), PostgreSQL with a generated tsvector column
and a GIN index, the same plain way as the chat's own search (migration 0021).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 06:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MAX_CHARACTERS = 100_000
_COLUMNS = "share_id, step_number, body"


def _sqlite_entries(row: str, *, trigger: bool) -> str:
    """The entries of the link `row`: NEW in a trigger, else every link (alias `l`)."""
    links = "" if trigger else f" FROM share_link {row}"
    each = f"json_each({row}.snapshot, '$.steps') s"
    body = (
        "coalesce(json_extract(s.value, '$.input'), '') || ' ' || "
        "coalesce(json_extract(s.value, '$.text'), '')"
    )
    return (
        f"SELECT {row}.id, NULL, substr({row}.title, 1, {_MAX_CHARACTERS}){links} "
        f"UNION ALL SELECT {row}.id, s.key + 1, substr({body}, 1, {_MAX_CHARACTERS}) "
        f"FROM {'' if trigger else f'share_link {row}, '}{each}"
    )


def _postgresql_entries(row: str, *, trigger: bool) -> str:
    links = "" if trigger else f" FROM share_link {row}"
    each = (
        f"json_array_elements(({row}.snapshot)::json -> 'steps') WITH ORDINALITY AS s(step, number)"
    )
    body = "coalesce(s.step ->> 'input', '') || ' ' || coalesce(s.step ->> 'text', '')"
    return (
        f"SELECT {row}.id, NULL::integer, substr({row}.title, 1, {_MAX_CHARACTERS}){links} "
        f"UNION ALL SELECT {row}.id, s.number::integer, substr({body}, 1, {_MAX_CHARACTERS}) "
        f"FROM {'' if trigger else f'share_link {row}, '}{each}"
    )


_SQLITE_UP = [
    """
    CREATE TABLE share_search_entry (
        id INTEGER PRIMARY KEY,
        share_id TEXT NOT NULL,
        step_number INTEGER,
        body TEXT NOT NULL
    )
    """,
    "CREATE INDEX ix_share_search_entry_share_id ON share_search_entry (share_id)",
    f"INSERT INTO share_search_entry ({_COLUMNS}) {_sqlite_entries('l', trigger=False)}",
    """
    CREATE VIRTUAL TABLE share_search USING fts5(
        body, content='share_search_entry', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2'
    )
    """,
    "INSERT INTO share_search (share_search) VALUES ('rebuild')",
    """
    CREATE TRIGGER share_search_entry_added AFTER INSERT ON share_search_entry BEGIN
        INSERT INTO share_search (rowid, body) VALUES (new.id, new.body);
    END
    """,
    """
    CREATE TRIGGER share_search_entry_removed AFTER DELETE ON share_search_entry BEGIN
        INSERT INTO share_search (share_search, rowid, body) VALUES ('delete', old.id, old.body);
    END
    """,
    f"""
    CREATE TRIGGER share_search_link_added AFTER INSERT ON share_link BEGIN
        INSERT INTO share_search_entry ({_COLUMNS}) {_sqlite_entries("new", trigger=True)};
    END
    """,
    """
    CREATE TRIGGER share_search_link_removed AFTER DELETE ON share_link BEGIN
        DELETE FROM share_search_entry WHERE share_id = old.id;
    END
    """,
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS share_search_link_removed",
    "DROP TRIGGER IF EXISTS share_search_link_added",
    "DROP TRIGGER IF EXISTS share_search_entry_removed",
    "DROP TRIGGER IF EXISTS share_search_entry_added",
    "DROP TABLE IF EXISTS share_search",
    "DROP TABLE IF EXISTS share_search_entry",
]

_POSTGRESQL_UP = [
    """
    CREATE TABLE share_search_entry (
        id BIGSERIAL PRIMARY KEY,
        share_id TEXT NOT NULL,
        step_number INTEGER,
        body TEXT NOT NULL,
        document TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
    )
    """,
    "CREATE INDEX ix_share_search_entry_share_id ON share_search_entry (share_id)",
    f"INSERT INTO share_search_entry ({_COLUMNS}) {_postgresql_entries('l', trigger=False)}",
    "CREATE INDEX ix_share_search_entry_document ON share_search_entry USING GIN (document)",
    f"""
    CREATE FUNCTION share_search_index_link() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM share_search_entry WHERE share_id = OLD.id;
        ELSE
            INSERT INTO share_search_entry ({_COLUMNS})
            {_postgresql_entries("NEW", trigger=True)};
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER share_search_link AFTER INSERT OR DELETE ON share_link
    FOR EACH ROW EXECUTE FUNCTION share_search_index_link()
    """,
]
_POSTGRESQL_DOWN = [
    "DROP TRIGGER IF EXISTS share_search_link ON share_link",
    "DROP FUNCTION IF EXISTS share_search_index_link()",
    "DROP TABLE IF EXISTS share_search_entry",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRESQL_UP if dialect == "postgresql" else _SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRESQL_DOWN if dialect == "postgresql" else _SQLITE_DOWN:
        op.execute(statement)
