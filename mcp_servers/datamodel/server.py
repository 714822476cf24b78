"""The data-model notes' FastMCP server: search, read and list the `marketplace` table notes."""

from pathlib import Path
from typing import Annotated

from mcp.server.fastmcp import FastMCP
from pydantic import BaseModel, Field

from mcp_servers.common import (
    MAX_LIMIT,
    READ_ONLY,
    DocSet,
    build_docs_server,
    page_or_error,
    search_docs,
)

__all__ = [
    "DATASET",
    "DEFAULT_DOCS_DIR",
    "OVERVIEW",
    "TableHit",
    "TableNotes",
    "TableSummary",
    "build_server",
]

DEFAULT_DOCS_DIR = Path(__file__).parent / "docs"
DATASET = "marketplace"
OVERVIEW = "overview"
"""The page that is not a table: how the tables join, and the conventions of every query."""

INSTRUCTIONS = f"""\
Notes on the BigQuery dataset `{DATASET}` of a second-hand marketplace, for writing SQL about it:
what a row of each table is, each column's meaning and units, how tables join, pitfalls, and
example questions with the SQL that answers them. Before writing a query, read
read_table_notes("{OVERVIEW}") once, then the notes of every table the query uses; search_data_model
finds the section about a term or a pitfall. The conventions every query follows:
- Qualify tables as {DATASET}.<table>; write BigQuery Standard SQL.
- Timestamps are UTC; days are Europe/Amsterdam days: DATE(ts, "Europe/Amsterdam"),
  CURRENT_DATE("Europe/Amsterdam").
- "Past N days" = the last N full days up to yesterday; today is excluded unless asked.
- Posts: exclude soft-deleted rows (deleted_at IS NULL) unless the question is about them.
- Revenue and sales: transactions with status = 'completed' only; refunded ones only for refunds.
- "Popular category" = most new posts by default; say so and offer chats or sales instead.
Tables: """


class TableHit(BaseModel):
    page: str = Field(
        description=f"A table name, or '{OVERVIEW}' for joins and conventions; "
        "pass it to read_table_notes."
    )
    title: str = Field(description="The page's title.")
    section: str = Field(description="The heading of the section that matched.")
    snippet: str = Field(description="Text around the best match in that section.")
    score: float = Field(description="Relevance; higher is better. Only compare within one search.")


class TableNotes(BaseModel):
    table: str = Field(
        description=f"The table name (query it as {DATASET}.<table>), or 'overview'."
    )
    title: str
    markdown: str = Field(
        description="The whole page as markdown: columns, joins, pitfalls, example SQL."
    )


class TableSummary(BaseModel):
    name: str = Field(description=f"The table name; query it as {DATASET}.<name>.")
    summary: str = Field(description="What one row of the table is.")


def build_server(
    docs_dir: Path | None = None, *, host: str = "127.0.0.1", port: int = 8301
) -> FastMCP:
    """The data-model server over the `*.md` pages in `docs_dir` (default: the shipped pages).

    One page per table, named after it, plus `overview.md`. The pages are read here, once, and
    each is also a resource `datamodel://<page>`.
    """
    notes = DocSet.load(docs_dir or DEFAULT_DOCS_DIR)
    tables = [page for page in notes.pages if page.slug != OVERVIEW]
    table_names = ", ".join(page.slug for page in tables)
    server = build_docs_server(
        name="datamodel",
        instructions=INSTRUCTIONS + table_names + ".",
        docs=notes,
        uri_scheme="datamodel",
        host=host,
        port=port,
    )

    @server.tool(title="Search the data-model notes", annotations=READ_ONLY)
    def search_data_model(
        query: Annotated[
            str,
            Field(description="Keywords, e.g. 'refunded revenue' or 'soft delete' or 'time zone'."),
        ],
        limit: Annotated[
            int, Field(ge=1, le=MAX_LIMIT, description="How many hits to return at most.")
        ] = 5,
    ) -> list[TableHit]:
        """Search the notes on the `marketplace` BigQuery tables; return the best sections first.

        Use it while writing SQL to find which table holds a fact, what a column means, how two
        tables join, a pitfall (time zones, soft-deleted posts, refunds, what "popular" means) or
        an example query close to the question. Send a few keywords, not the whole question.
        Each hit names a page (a table, or 'overview' for joins and conventions), a section and a
        snippet; read the page with read_table_notes before relying on a detail. An empty list
        means no note mentions those words: try other words, or list_tables.
        """
        matches = search_docs(
            notes, query, limit, examples="'soft delete', 'refunded revenue' or 'time zone'"
        )
        return [
            TableHit(
                page=match.page.slug,
                title=match.page.title,
                section=match.section.heading,
                snippet=match.snippet,
                score=match.score,
            )
            for match in matches
        ]

    @server.tool(title="Read a table's notes", annotations=READ_ONLY)
    def read_table_notes(
        table: Annotated[
            str,
            Field(
                description=f"A table name from list_tables, e.g. 'posts' (a '{DATASET}.' prefix "
                f"is accepted), or '{OVERVIEW}' for the joins and conventions of every query."
            ),
        ],
    ) -> TableNotes:
        """Read the notes on one table of the `marketplace` BigQuery dataset, as markdown.

        The notes say what a row is, give every column with its type, meaning and units, how the
        table joins the others, its pitfalls, and example questions with the BigQuery SQL that
        answers them. Read the notes of every table a query uses before writing it, and
        read_table_notes("overview") once for the conventions: time zone, "past N days",
        soft-deleted posts, refunds, what "popular" means.
        """
        name = table.strip().strip("`").lower().removeprefix(f"{DATASET}.")
        page = page_or_error(
            notes,
            name,
            unknown=f"there are no notes on a table {{slug!r}} in {DATASET}; the tables are: "
            f"{table_names} (and '{OVERVIEW}' holds the joins and conventions)",
        )
        return TableNotes(table=page.slug, title=page.title, markdown=page.markdown)

    @server.tool(title="List the tables", annotations=READ_ONLY)
    def list_tables() -> list[TableSummary]:
        """List the tables of the `marketplace` BigQuery dataset: name and what one row is.

        Query a table as marketplace.<name>. Read a table's columns, joins and pitfalls with
        read_table_notes(name), and the conventions of every query with
        read_table_notes("overview").
        """
        return [TableSummary(name=page.slug, summary=page.summary) for page in tables]

    return server
