"""chat search: a full-text index of conversation titles, messages and tool steps

`chat_search_entry` holds one row per indexed text: a thread's title (no step id), a user or
assistant message (its output), a tool step (its input, such as the SQL the analyst ran, and
its output). Triggers on `threads` and `steps` keep it current as Chainlit writes; rows that
exist already are indexed here. On SQLite an FTS5 table indexes the entries' text (external
content, kept in step by triggers on the entries); on PostgreSQL a generated tsvector column
with a GIN index does. Both split words the same plain way (no stemming), and index at most
the first 100,000 characters of a text.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 18:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXED_TYPES = "('user_message', 'assistant_message', 'tool')"
_MAX_CHARACTERS = 100_000


def _unescaped(column: str) -> str:
    # Tool inputs are JSON: a newline inside the SQL is the two characters `\n`, which would
    # glue the word after it to an `n`.
    return f"replace(replace(coalesce({column}, ''), '\\n', ' '), '\\t', ' ')"


def _step_text(row: str) -> str:
    """The indexed text of the step `row` (a table alias, or NEW in a trigger)."""
    tool = f"{_unescaped(f'{row}.input')} || ' ' || {_unescaped(f'{row}.output')}"
    return (
        f"substr(CASE WHEN {row}.type = 'tool' THEN {tool} "
        f"ELSE coalesce({row}.output, '') END, 1, {_MAX_CHARACTERS})"
    )


def _title_text(row: str) -> str:
    return f"substr(coalesce({row}.name, ''), 1, {_MAX_CHARACTERS})"


_ENTRY_COLUMNS = "thread_id, step_id, created_at, body"
_BACKFILL = [
    f"""
    INSERT INTO chat_search_entry ({_ENTRY_COLUMNS})
    SELECT t.id, NULL, t."createdAt", {_title_text("t")} FROM threads t
    """,
    f"""
    INSERT INTO chat_search_entry ({_ENTRY_COLUMNS})
    SELECT s."threadId", s.id, s."createdAt", {_step_text("s")} FROM steps s
    WHERE s.type IN {_INDEXED_TYPES}
    """,
]

_SQLITE_UP = [
    """
    CREATE TABLE chat_search_entry (
        id INTEGER PRIMARY KEY,
        thread_id TEXT NOT NULL,
        step_id TEXT UNIQUE,
        created_at TEXT,
        body TEXT NOT NULL
    )
    """,
    "CREATE INDEX ix_chat_search_entry_thread_id ON chat_search_entry (thread_id)",
    *_BACKFILL,
    """
    CREATE VIRTUAL TABLE chat_search USING fts5(
        body, content='chat_search_entry', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2'
    )
    """,
    "INSERT INTO chat_search (chat_search) VALUES ('rebuild')",
    """
    CREATE TRIGGER chat_search_entry_added AFTER INSERT ON chat_search_entry BEGIN
        INSERT INTO chat_search (rowid, body) VALUES (new.id, new.body);
    END
    """,
    """
    CREATE TRIGGER chat_search_entry_removed AFTER DELETE ON chat_search_entry BEGIN
        INSERT INTO chat_search (chat_search, rowid, body) VALUES ('delete', old.id, old.body);
    END
    """,
    f"""
    CREATE TRIGGER chat_search_step_added AFTER INSERT ON steps
    WHEN new.type IN {_INDEXED_TYPES} BEGIN
        INSERT INTO chat_search_entry ({_ENTRY_COLUMNS})
        VALUES (new."threadId", new.id, new."createdAt", {_step_text("new")});
    END
    """,
    f"""
    CREATE TRIGGER chat_search_step_changed AFTER UPDATE ON steps
    WHEN old.output IS NOT new.output OR old.input IS NOT new.input
        OR old.type IS NOT new.type OR old."createdAt" IS NOT new."createdAt" BEGIN
        DELETE FROM chat_search_entry WHERE step_id = old.id;
        INSERT INTO chat_search_entry ({_ENTRY_COLUMNS})
        SELECT new."threadId", new.id, new."createdAt", {_step_text("new")}
        WHERE new.type IN {_INDEXED_TYPES};
    END
    """,
    """
    CREATE TRIGGER chat_search_step_removed AFTER DELETE ON steps BEGIN
        DELETE FROM chat_search_entry WHERE step_id = old.id;
    END
    """,
    f"""
    CREATE TRIGGER chat_search_thread_added AFTER INSERT ON threads BEGIN
        INSERT INTO chat_search_entry ({_ENTRY_COLUMNS})
        VALUES (new.id, NULL, new."createdAt", {_title_text("new")});
    END
    """,
    f"""
    CREATE TRIGGER chat_search_thread_changed AFTER UPDATE ON threads
    WHEN old.name IS NOT new.name OR old."createdAt" IS NOT new."createdAt" BEGIN
        DELETE FROM chat_search_entry WHERE thread_id = old.id AND step_id IS NULL;
        INSERT INTO chat_search_entry ({_ENTRY_COLUMNS})
        VALUES (new.id, NULL, new."createdAt", {_title_text("new")});
    END
    """,
    """
    CREATE TRIGGER chat_search_thread_removed AFTER DELETE ON threads BEGIN
        DELETE FROM chat_search_entry WHERE thread_id = old.id;
    END
    """,
]
_SQLITE_DOWN = [
    *(
        f"DROP TRIGGER IF EXISTS chat_search_{name}"
        for name in (
            "thread_removed",
            "thread_changed",
            "thread_added",
            "step_removed",
            "step_changed",
            "step_added",
            "entry_removed",
            "entry_added",
        )
    ),
    "DROP TABLE IF EXISTS chat_search",
    "DROP TABLE IF EXISTS chat_search_entry",
]

_POSTGRESQL_UP = [
    """
    CREATE TABLE chat_search_entry (
        id BIGSERIAL PRIMARY KEY,
        thread_id TEXT NOT NULL,
        step_id TEXT UNIQUE,
        created_at TEXT,
        body TEXT NOT NULL,
        document TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
    )
    """,
    "CREATE INDEX ix_chat_search_entry_thread_id ON chat_search_entry (thread_id)",
    *_BACKFILL,
    "CREATE INDEX ix_chat_search_entry_document ON chat_search_entry USING GIN (document)",
    # Statistics for the planner now, rather than after autovacuum's next round.
    "ANALYZE chat_search_entry",
    f"""
    CREATE FUNCTION chat_search_index_step() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.output IS NOT DISTINCT FROM NEW.output
            AND OLD.input IS NOT DISTINCT FROM NEW.input AND OLD.type = NEW.type
            AND OLD."createdAt" IS NOT DISTINCT FROM NEW."createdAt" THEN
            RETURN NULL;
        END IF;
        IF TG_OP <> 'INSERT' THEN
            DELETE FROM chat_search_entry WHERE step_id = OLD.id;
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.type IN {_INDEXED_TYPES} THEN
            INSERT INTO chat_search_entry ({_ENTRY_COLUMNS})
            VALUES (NEW."threadId", NEW.id, NEW."createdAt", {_step_text("NEW")});
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER chat_search_step AFTER INSERT OR UPDATE OR DELETE ON steps
    FOR EACH ROW EXECUTE FUNCTION chat_search_index_step()
    """,
    f"""
    CREATE FUNCTION chat_search_index_thread() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM chat_search_entry WHERE thread_id = OLD.id;
            RETURN NULL;
        END IF;
        IF TG_OP = 'UPDATE' THEN
            IF OLD.name IS NOT DISTINCT FROM NEW.name
                AND OLD."createdAt" IS NOT DISTINCT FROM NEW."createdAt" THEN
                RETURN NULL;
            END IF;
            DELETE FROM chat_search_entry WHERE thread_id = OLD.id AND step_id IS NULL;
        END IF;
        INSERT INTO chat_search_entry ({_ENTRY_COLUMNS})
        VALUES (NEW.id, NULL, NEW."createdAt", {_title_text("NEW")});
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER chat_search_thread AFTER INSERT OR UPDATE OR DELETE ON threads
    FOR EACH ROW EXECUTE FUNCTION chat_search_index_thread()
    """,
]
_POSTGRESQL_DOWN = [
    "DROP TRIGGER IF EXISTS chat_search_thread ON threads",
    "DROP FUNCTION IF EXISTS chat_search_index_thread()",
    "DROP TRIGGER IF EXISTS chat_search_step ON steps",
    "DROP FUNCTION IF EXISTS chat_search_index_step()",
    "DROP TABLE IF EXISTS chat_search_entry",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRESQL_UP if dialect == "postgresql" else _SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRESQL_DOWN if dialect == "postgresql" else _SQLITE_DOWN:
        op.execute(statement)
