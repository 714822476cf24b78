"""Query results in the chat: a paged table, a chart chosen from the shape of the data, and a
CSV download, all built by this code from the rows a tool returned (never by running code a
model wrote).

A tool result is a table when its structured content has `columns` (each with a `name` and a
BigQuery `type`) and `rows` (objects keyed by column name), as the BigQuery server's
`run_query` returns. The chart is a line over time when a date or time column is there, bars
per category when a text column is, and none otherwise.
"""

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import chainlit as cl
import orjson
import plotly.graph_objects as go
from chainlit.element import Element, ElementSize, ElementType
from pydantic.dataclasses import dataclass as element_dataclass

__all__ = ["ResultTable", "chart_kind", "elements_for", "table_from"]

_TIME_TYPES = {"DATE", "DATETIME", "TIMESTAMP"}
_NUMBER_TYPES = {"INTEGER", "INT64", "FLOAT", "FLOAT64", "NUMERIC", "BIGNUMERIC"}
_TEXT_TYPES = {"STRING", "BOOL", "BOOLEAN"}
# More bars than this are unreadable; more lines than this too.
_MAX_BARS = 50
_MAX_SERIES = 5

ChartKind = Literal["line", "bar"]


@dataclass(frozen=True, slots=True)
class ResultTable:
    """Rows as a tool returned them, with each column's name and type."""

    columns: tuple[tuple[str, str], ...]
    rows: tuple[dict[str, Any], ...]
    truncated: bool = False
    sql: str = ""

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def of_types(self, types: set[str]) -> list[str]:
        return [name for name, kind in self.columns if kind in types]


def table_from(structured: dict[str, Any] | None) -> ResultTable | None:
    """The table in a tool's structured result, or None when it holds no table."""
    if not structured:
        return None
    columns, rows = structured.get("columns"), structured.get("rows")
    if not isinstance(columns, list) or not isinstance(rows, list) or not columns:
        return None
    try:
        named = tuple((str(c["name"]), str(c.get("type", "")).upper()) for c in columns)
    except (KeyError, TypeError, AttributeError):
        return None
    if not all(isinstance(row, dict) for row in rows):
        return None
    return ResultTable(
        columns=named,
        rows=tuple(rows),
        truncated=bool(structured.get("truncated")),
        sql=str(structured.get("sql") or ""),
    )


def chart_kind(table: ResultTable) -> tuple[ChartKind, str, list[str]] | None:
    """(kind, x column, y columns) for the chart that suits the table, or None."""
    numbers = table.of_types(_NUMBER_TYPES)
    if len(table.rows) < 2 or not numbers:
        return None
    times = table.of_types(_TIME_TYPES)
    if times:
        return "line", times[0], numbers[:_MAX_SERIES]
    texts = table.of_types(_TEXT_TYPES)
    if texts and len(table.rows) <= _MAX_BARS:
        return "bar", texts[0], numbers[:1]
    return None


def _figure(table: ResultTable, kind: ChartKind, x: str, ys: Sequence[str]) -> go.Figure:
    rows = sorted(table.rows, key=lambda row: str(row.get(x))) if kind == "line" else table.rows
    xs = [row.get(x) for row in rows]
    figure = go.Figure()
    for y in ys:
        values = [row.get(y) for row in rows]
        if kind == "line":
            figure.add_trace(go.Scatter(x=xs, y=values, name=y, mode="lines+markers"))
        else:
            figure.add_trace(go.Bar(x=xs, y=values, name=y))
    figure.update_layout(
        xaxis_title=x,
        yaxis_title=ys[0] if len(ys) == 1 else None,
        showlegend=len(ys) > 1,
        margin={"l": 40, "r": 20, "t": 20, "b": 40},
    )
    return figure


@element_dataclass
class _Table(Element):
    """Chainlit's own paged, sortable table (its "dataframe" element), filled from the rows
    directly: pandas would only be needed to serialize what is already here."""

    type: ClassVar[ElementType] = "dataframe"
    size: ElementSize = "large"


def _table_element(table: ResultTable) -> Element:
    data = {
        "columns": table.names,
        "index": list(range(len(table.rows))),
        "data": [[row.get(name) for name in table.names] for row in table.rows],
    }
    return _Table(name="Query result", content=orjson.dumps(data).decode(), display="inline")


def _csv(table: ResultTable) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.names)
    for row in table.rows:
        writer.writerow(["" if row.get(name) is None else row.get(name) for name in table.names])
    return out.getvalue().encode()


def elements_for(table: ResultTable) -> list[Element]:
    """The table, its chart when one suits it, and the CSV file, for a message's elements."""
    elements: list[Element] = [_table_element(table)]
    chart = chart_kind(table)
    if chart is not None:
        kind, x, ys = chart
        elements.append(
            cl.Plotly(name="Chart", figure=_figure(table, kind, x, ys), display="inline")
        )
    elements.append(
        cl.File(name="result.csv", content=_csv(table), mime="text/csv", display="inline")
    )
    return elements
