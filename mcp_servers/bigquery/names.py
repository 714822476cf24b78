"""Table names as BigQuery reads them, for layer one of the SQL guard.

sqlglot's BigQuery parser tidies table names for its own ends, and some of its tidying reads a
name differently from BigQuery: it turns a FROM path that starts with an earlier FROM item's
name into an UNNEST even when BigQuery reads a table there (after `FROM orders AS s,` the name
s.t in one pair of backticks is BigQuery's table `s.t`, not an array of `s`), and it folds an
INFORMATION_SCHEMA path into three parts, dropping whatever was written before them. So the
guard parses with `GuardDialect`: BigQuery's parser that keeps every FROM path a table and
records, on each table, the identifiers it was written with. `read_path` reads those as
BigQuery does (every identifier, quoted or not, split at its dots) and refuses what it cannot
read, and `is_array_path` decides, with BigQuery's rules, which paths are arrays of an earlier
FROM item.

Names are compared as BigQuery compares them: datasets and tables exactly, aliases and
keywords without regard to ASCII case only (a non-ASCII letter never matches another letter).
"""

from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.parser import Parser
from sqlglot.parsers.bigquery import BigQueryParser
from sqlglot.tokenizer_core import Token, TokenType

from mcp_servers.bigquery.refusal import QueryRefusedError

__all__ = [
    "GuardDialect",
    "TablePath",
    "ascii_fold",
    "check_quoted_identifiers",
    "is_array_path",
    "read_path",
    "written_parts",
]

INFORMATION_SCHEMA = "INFORMATION_SCHEMA"
_WRITTEN = "switchboard_written_parts"
_NAMING = "Name tables as dataset.table or project.dataset.table"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# BigQuery's escape sequences in quoted identifiers (the same as in string literals).
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "?": "?",
    '"': '"',
    "'": "'",
    "`": "`",
}
_HEX_ESCAPE_DIGITS = {"x": 2, "X": 2, "u": 4, "U": 8}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCTAL = frozenset("01234567")


def ascii_fold(name: str) -> str:
    """`name` with ASCII capitals lowered and nothing else changed, as BigQuery folds aliases."""
    return name.translate(_ASCII_LOWER)


class _WrittenNames(Parser):
    """The base parser's table name, before BigQuery's parser rewrites it, kept for the caller."""

    _last_written: tuple[str | None, ...] = ()

    def _parse_table_parts(
        self,
        schema: bool = False,
        is_db_reference: bool = False,
        wildcard: bool = False,
        fast: bool = False,
    ) -> exp.Table | exp.Dot | None:
        table = super()._parse_table_parts(
            schema=schema, is_db_reference=is_db_reference, wildcard=wildcard, fast=fast
        )
        # Set after the whole name (and any table nested in it) is parsed, so it is this one's.
        self._last_written = _identifiers(table) if isinstance(table, exp.Table) else ()
        return table


def _identifiers(table: exp.Table) -> tuple[str | None, ...]:
    """Each written part's name; None for a part that is not a non-empty identifier."""
    names: list[str | None] = []
    for arg in ("catalog", "db", "this"):
        part: Any = table.args.get(arg)
        if part is None:
            continue
        for piece in part.flatten() if isinstance(part, exp.Dot) else [part]:
            is_name = isinstance(piece, exp.Identifier) and piece.name
            names.append(piece.name if is_name else None)
    return tuple(names)


class _GuardParser(BigQueryParser, _WrittenNames):
    # Which FROM paths are arrays is decided by `is_array_path`, with BigQuery's rules.
    SUPPORTS_IMPLICIT_UNNEST = False

    def _parse_table_parts(
        self,
        schema: bool = False,
        is_db_reference: bool = False,
        wildcard: bool = False,
        fast: bool = False,
    ) -> exp.Table | exp.Dot | None:
        table = super()._parse_table_parts(
            schema=schema, is_db_reference=is_db_reference, wildcard=wildcard, fast=fast
        )
        if isinstance(table, exp.Table):
            table.meta[_WRITTEN] = self._last_written
        return table


class GuardDialect(BigQuery):
    """BigQuery as sqlglot reads it, but with table names kept as written."""

    Parser = _GuardParser


def written_parts(table: exp.Table) -> tuple[str | None, ...]:
    """The identifiers `table`'s name was written with (`a`.`b.c` is two), before splitting."""
    written = table.meta.get(_WRITTEN)
    if not isinstance(written, tuple) or not written:
        # Not parsed by GuardDialect's parser: nothing says how it was written.
        return (None,)
    return written


@dataclass(frozen=True, slots=True)
class TablePath:
    """A table name read as BigQuery reads it; None where the job's defaults apply."""

    project: str | None
    dataset: str | None
    name: str
    view: str | None = None  # the INFORMATION_SCHEMA view, upper case, when it is one


def read_path(parts: tuple[str | None, ...]) -> TablePath:
    """Split the written identifiers at every dot, as BigQuery does in a table name, and read
    them as [[project.]dataset.]table or [[project.]dataset.]INFORMATION_SCHEMA.view."""
    if any(part is None for part in parts):
        raise QueryRefusedError(
            "A table name has a part that is not a plain name (an empty part, a parameter or "
            f"a function call). {_NAMING}."
        )
    segments = [segment for part in parts if part is not None for segment in part.split(".")]
    shown = ".".join(segments)
    if "" in segments:
        raise QueryRefusedError(f"`{shown}` has an empty part. {_NAMING}.")
    keywords = [_keyword(segment) for segment in segments]
    if INFORMATION_SCHEMA in keywords:
        if keywords.index(INFORMATION_SCHEMA) != len(segments) - 2:
            raise QueryRefusedError(
                f"`{shown}` is not an INFORMATION_SCHEMA view name. Write dataset."
                "INFORMATION_SCHEMA.VIEW, for example marketplace.INFORMATION_SCHEMA.TABLES."
            )
        qualifier, view = segments[:-2], keywords[-1]
        if len(qualifier) > 2:
            raise QueryRefusedError(f"`{shown}` has too many parts. {_NAMING}.")
        return TablePath(*_qualified(qualifier), f"{INFORMATION_SCHEMA}.{view}", view)
    if len(segments) > 3:
        raise QueryRefusedError(f"`{shown}` has too many parts. {_NAMING}.")
    *qualifier, name = segments
    if any("*" in segment for segment in qualifier) or "*" in name[:-1]:
        raise QueryRefusedError(
            f"`{shown}` has a * that is not at the end of the table name. A wildcard table is "
            "written dataset.prefix_*."
        )
    return TablePath(*_qualified(qualifier), name)


def _keyword(name: str) -> str:
    """`name` in ASCII capitals, as BigQuery compares keywords (`ı` is not `i`)."""
    return ascii_fold(name).upper() if name.isascii() else name


def _is_information_schema(part: str) -> bool:
    return INFORMATION_SCHEMA in (_keyword(segment) for segment in part.split("."))


def _qualified(qualifier: list[str]) -> tuple[str | None, str | None]:
    """(project, dataset) from the one or two parts before a table name, if any."""
    if len(qualifier) == 2:
        return qualifier[0], qualifier[1]
    return None, (qualifier[0] if qualifier else None)


def is_array_path(table: exp.Table) -> bool:
    """Whether BigQuery reads `table` as a path into an earlier FROM item (`FROM orders AS o,
    o.items`) rather than a table: its first identifier, written without a dot, names an item
    to its left in the same FROM clause, joined by a comma or CROSS JOIN. Anything less clear
    is read as a table, which the guard then checks against the allowed datasets."""
    parts = written_parts(table)
    first = parts[0]
    if len(parts) < 2 or first is None or "." in first:
        return False
    # No array path has a wildcard or an INFORMATION_SCHEMA in it; such a name is a table.
    if any(part is None or "*" in part or _is_information_schema(part) for part in parts):
        return False
    join = table.parent
    select = join.parent if isinstance(join, exp.Join) else None
    if not isinstance(join, exp.Join) or not isinstance(select, exp.Select):
        return False
    if join.args.get("on") or join.args.get("using"):
        return False
    from_ = select.args.get("from_")
    joins: list[exp.Join] = select.args.get("joins") or []
    position = next((i for i, other in enumerate(joins) if other is join), None)
    if not isinstance(from_, exp.From) or position is None:
        return False
    earlier = [from_.this, *(other.this for other in joins[:position])]
    return ascii_fold(first) in {ascii_fold(name) for name in map(_range_name, earlier) if name}


def _range_name(item: exp.Expr) -> str | None:
    """The name a FROM item goes by: its alias, else a path's last identifier."""
    alias = item.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.name:
        return alias.name
    if isinstance(item, exp.Table):
        last = written_parts(item)[-1]
        if last is not None and "." not in last:
            return last
    return None


def check_quoted_identifiers(text: str, tokens: list[Token]) -> None:
    """Refuse a backticked name whose escapes sqlglot reads differently from BigQuery."""
    for token in tokens:
        if token.token_type != TokenType.IDENTIFIER:
            continue
        raw = text[token.start + 1 : token.end]
        if "\\" in raw and _unescape(raw) != token.text:
            raise QueryRefusedError(
                f"The quoted name `{raw}` has an escape sequence that cannot be read safely. "
                "Write the name without backslash escapes."
            )


def _unescape(raw: str) -> str | None:
    """`raw` with BigQuery's escape sequences decoded, or None when one is not valid."""
    out: list[str] = []
    index = 0
    while index < len(raw):
        char = raw[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        kind = raw[index + 1 : index + 2]
        if kind in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[kind])
            index += 2
        elif kind in _HEX_ESCAPE_DIGITS:
            digits = raw[index + 2 : index + 2 + _HEX_ESCAPE_DIGITS[kind]]
            if len(digits) != _HEX_ESCAPE_DIGITS[kind] or not set(digits) <= _HEX:
                return None
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                return None
            out.append(chr(code))
            index += 2 + len(digits)
        elif kind in _OCTAL:
            digits = raw[index + 1 : index + 4]
            if len(digits) != 3 or not set(digits) <= _OCTAL or int(digits, 8) > 0o377:
                return None
            out.append(chr(int(digits, 8)))
            index += 4
        else:
            return None
    return "".join(out)
