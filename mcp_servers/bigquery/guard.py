"""Layer one of the SQL guard: a pure-Python check before a query reaches BigQuery.

The text is parsed with sqlglot in the BigQuery dialect and accepted only when it is exactly one
read-only query (SELECT, WITH ... SELECT, set operations) over tables in the allowed datasets.
Table names are read as BigQuery reads them (`names.py`), not as sqlglot tidies them, and a
name the guard cannot read that way is refused. Time travel (FOR SYSTEM_TIME AS OF) and
SESSION_USER() are refused unless the policy allows them.
The check is an allow-list: every node of the parsed tree must be of a type a read-only SELECT
can contain. Functions are the built-ins minus those that reach outside BigQuery or run models,
refused by name wherever they appear; user-defined and table-valued functions are refused.
A token scan of the raw text then backs up the tree walk (pipe syntax, denied names).

The SQL passed on is the caller's text with surrounding whitespace stripped, never sqlglot's
regenerated SQL, so BigQuery's own errors point at what the model wrote. Whatever runs it must
still dry-run it, insist on statement type SELECT and check the tables the dry run reports:
that catches any place where sqlglot and BigQuery read the same text differently.
"""

import re
import unicodedata
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.tokenizer_core import Token, TokenType

from mcp_servers.bigquery.names import (
    GuardDialect,
    ascii_fold,
    check_quoted_identifiers,
    is_array_path,
    read_path,
    written_parts,
)
from mcp_servers.bigquery.refusal import QueryRefusedError

__all__ = ["MAX_QUERY_CHARS", "CheckedQuery", "GuardPolicy", "QueryRefusedError", "check_query"]

MAX_QUERY_CHARS = 20_000
DIALECT = "bigquery"
_FIX = "Write a single read-only SELECT (WITH ... SELECT is fine)."

# Node types a read-only query may contain besides functions (exp.Func, checked by name).
_ALLOWED_NODES: frozenset[type[exp.Expr]] = frozenset(
    {
        *(exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE),
        *(exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Qualify, exp.Order),
        *(exp.Ordered, exp.Limit, exp.Offset, exp.Window, exp.WindowSpec, exp.Distinct),
        *(exp.GroupingSets, exp.Cube, exp.Rollup, exp.Pivot, exp.TableSample),
        *(exp.Table, exp.TableAlias, exp.Alias, exp.Aliases, exp.Column, exp.Identifier),
        *(exp.Star, exp.Dot, exp.Bracket, exp.Paren, exp.Tuple, exp.Slice, exp.Lambda),
        *(exp.Literal, exp.RawString, exp.ByteString, exp.HexString, exp.Null, exp.Boolean),
        *(exp.Var, exp.DataType, exp.DataTypeParam, exp.ColumnDef, exp.Interval),
        *(exp.And, exp.Or, exp.Not, exp.Neg, exp.Is, exp.In, exp.Between, exp.Like),
        *(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ),
        *(exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.DPipe),
        *(exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseXor, exp.BitwiseNot),
        *(exp.BitwiseLeftShift, exp.BitwiseRightShift, exp.Any, exp.All),
        *(exp.PropertyEQ, exp.Kwarg, exp.IgnoreNulls, exp.RespectNulls, exp.HavingMax),
        *(exp.WithinGroup, exp.Filter, exp.JSONPath),
    }
)

# Built-in functions that reach outside BigQuery, run models or touch files, by SQL name.
_DENIED_FUNCTIONS = {
    "EXTERNAL_QUERY": "it runs a query on an external database",
    "EXTERNAL_OBJECT_TRANSFORM": "it reads objects outside BigQuery",
    "VECTOR_SEARCH": "it runs an index search over embeddings",
    "PREDICT": "it runs a model",
    "GENERATE_TEXT": "it calls a model",
    "GENERATE_EMBEDDING": "it calls a model",
    "GENERATE_TABLE": "it calls a model",
    "GENERATE_BOOL": "it calls a model",
    "GENERATE_DOUBLE": "it calls a model",
    "GENERATE_INT": "it calls a model",
    "READ_CSV": "it reads files",
    "READ_PARQUET": "it reads files",
    "TO_FILE": "it writes files",
}
# Refused by the token scan even as bare names; the others only where they are called.
_NEVER_NAMES = frozenset({"EXTERNAL_QUERY", "EXTERNAL_OBJECT_TRANSFORM"})
_MODEL_NAMESPACES = frozenset({"ML", "AI"})
_ALLOWED_NAMESPACES = frozenset({"SAFE", "NET", "HLL_COUNT", "KLL_QUANTILES"})
_MODEL_CLASS = re.compile(r"(AI|ML)[A-Z]")
_SESSION_USER = "SESSION_USER"
# Dataset-level INFORMATION_SCHEMA views that only describe the dataset's own tables.
_INFORMATION_SCHEMA_VIEWS = frozenset(
    {"TABLES", "COLUMNS", "COLUMN_FIELD_PATHS", "TABLE_OPTIONS", "PARTITIONS", "VIEWS"}
)
_TIME_TRAVEL = (
    "Time travel (FOR SYSTEM_TIME AS OF) is not allowed here: it reads rows as they were, "
    "including rows deleted since. Remove the FOR SYSTEM_TIME AS OF clause and query the "
    "table as it is now."
)
_SESSION_USER_REFUSAL = (
    "SESSION_USER() is not allowed here: it reports the account the server runs queries as. "
    "Remove it from the query."
)
_STATEMENT_NAMES: dict[type[exp.Expr], str] = {
    exp.Delete: "DELETE",
    exp.Update: "UPDATE",
    exp.Insert: "INSERT",
    exp.Merge: "MERGE",
    exp.Create: "CREATE",
    exp.Drop: "DROP",
    exp.Alter: "ALTER",
    exp.TruncateTable: "TRUNCATE",
    exp.Export: "EXPORT DATA",
    exp.LoadData: "LOAD DATA",
    exp.Declare: "DECLARE",
    exp.Set: "SET",
    exp.Grant: "GRANT",
    exp.Revoke: "REVOKE",
    exp.EndStatement: "END",
}
_COMMAND_NAMES = {"EXECUTE": "EXECUTE IMMEDIATE"}
_STRING_TOKENS = frozenset(
    {TokenType.STRING, TokenType.RAW_STRING, TokenType.BYTE_STRING, TokenType.HEX_STRING}
)
_LEGACY_SQL = re.compile(r"#\s*legacy_?sql", re.IGNORECASE)
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_TOKEN_REPR = re.compile(r"<Token token_type: [^,]+, text: ([^,]*),[^>]*>")


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """Where queries may read: datasets of `project`, or "project.dataset" in other projects."""

    project: str
    default_dataset: str
    allowed_datasets: frozenset[str]
    # FOR SYSTEM_TIME AS OF reads rows as they were, including rows deleted since.
    allow_time_travel: bool = False
    # SESSION_USER() tells the query who runs it: the server's own account.
    allow_session_user: bool = False

    def __post_init__(self) -> None:
        if not self.project or not self.allowed_datasets:
            raise ValueError("GuardPolicy needs a project and at least one allowed dataset")
        if not self.allows(self.project, self.default_dataset):
            raise ValueError(f"the default dataset {self.default_dataset} must be allowed")

    def allows(self, project: str, dataset: str) -> bool:
        if project == self.project and dataset in self.allowed_datasets:
            return True
        return f"{project}.{dataset}" in self.allowed_datasets

    def describe(self) -> str:
        return ", ".join(sorted(self.allowed_datasets))


@dataclass(frozen=True, slots=True)
class CheckedQuery:
    sql: str
    tables: tuple[str, ...]


def check_query(sql: str, policy: GuardPolicy) -> CheckedQuery:
    """Accept one read-only SELECT over allowed tables, or raise QueryRefusedError."""
    text = sql.strip()
    _check_text(text)
    root = _parse_single_query(text)
    tokens: list[Token] = sqlglot.tokenize(text, read=DIALECT)
    check_quoted_identifiers(text, tokens)
    tables: set[str] = set()
    for node in root.walk():
        if isinstance(node, exp.Table):
            name = _resolve_table(node, root, policy)
            if name is not None:
                tables.add(name)
        elif isinstance(node, exp.Func):
            _check_function(node, policy)
        elif isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
            _check_namespace(node)
        elif isinstance(node, exp.Version) and not policy.allow_time_travel:
            raise QueryRefusedError(_TIME_TRAVEL)
        elif type(node) not in _ALLOWED_NODES and not isinstance(
            node, exp.JSONPathPart | exp.Version
        ):
            raise QueryRefusedError(_unsupported(node))
    _check_tokens(tokens, policy)
    return CheckedQuery(sql=text, tables=tuple(sorted(tables)))


def _check_text(text: str) -> None:
    if not text:
        raise QueryRefusedError(f"The query is empty. {_FIX}")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryRefusedError(
            f"The query is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}. "
            "Write a shorter SELECT: aggregate in SQL rather than listing values."
        )
    for char in text:
        if char not in "\t\n\r" and (
            unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS
        ):
            raise QueryRefusedError(
                f"The query contains the control character U+{ord(char):04X}. "
                "Remove it; use plain spaces, tabs and newlines."
            )
    if _LEGACY_SQL.search(text):
        raise QueryRefusedError(
            "Legacy SQL is not supported: remove the #legacySQL prefix and write GoogleSQL."
        )


def _parse_single_query(text: str) -> exp.Expr:
    try:
        parsed = sqlglot.parse(text, read=GuardDialect)
    except RecursionError:
        raise QueryRefusedError(
            f"The query is nested too deeply to check. Flatten it with CTEs. {_FIX}"
        ) from None
    except SqlglotError as error:
        raise QueryRefusedError(
            f"The query could not be parsed as BigQuery SQL: {_parse_error(error)}. "
            f"Fix the syntax. {_FIX}"
        ) from None
    # "SELECT 1;" may leave an empty statement, "SELECT 1; -- done" a comment-only one.
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if not statements:
        raise QueryRefusedError(f"The query has no statement, only comments. {_FIX}")
    if len(statements) > 1:
        kinds = ", ".join(_statement_name(s) for s in statements)
        raise QueryRefusedError(
            f"Only one SELECT statement is allowed; found {len(statements)} statements "
            f"({kinds}). Send a single SELECT (WITH ... SELECT is fine)."
        )
    root = statements[0]
    if not isinstance(root, exp.Select | exp.SetOperation | exp.Subquery):
        raise QueryRefusedError(_statement_refusal(root))
    return root


def _parse_error(error: SqlglotError) -> str:
    if isinstance(error, ParseError) and error.errors:
        first = error.errors[0]
        description = _TOKEN_REPR.sub(r"'\1'", str(first.get("description", "")))
        return f"{description} at line {first.get('line')}, column {first.get('col')}"
    return str(error).splitlines()[0]


def _statement_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        keyword = str(node.this).upper()
        return _COMMAND_NAMES.get(keyword, keyword)
    if isinstance(node, exp.Query):
        return "SELECT"
    return _STATEMENT_NAMES.get(type(node), type(node).__name__.upper())


def _statement_refusal(node: exp.Expr) -> str:
    return (
        f"{_statement_name(node)} statements are not allowed: this tool only reads data. "
        "Write a SELECT (WITH ... SELECT is fine)."
    )


def _unsupported(node: exp.Expr) -> str:
    if isinstance(node, exp.Parameter | exp.SessionParameter | exp.Placeholder):
        return (
            "Query parameters (@name) and system variables (@@name) are not supported. "
            "Write the values into the query as literals."
        )
    if isinstance(node, exp.Lock):
        return "Locking reads (FOR UPDATE) are not allowed. Remove the FOR UPDATE clause."
    if isinstance(node, exp.Into):
        return "SELECT ... INTO writes a table; this tool only reads data. Remove the INTO clause."
    if isinstance(node, exp.DML | exp.DDL | exp.Command) or type(node) in _STATEMENT_NAMES:
        return _statement_refusal(node)
    return (
        f"The query uses {type(node).__name__} (`{_snippet(node)}`), which this tool does not "
        f"allow in a read-only query. Remove it. {_FIX}"
    )


def _snippet(node: exp.Expr) -> str:
    try:
        text = node.sql(dialect=DIALECT)
    except SqlglotError:
        text = type(node).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _check_function(node: exp.Func, policy: GuardPolicy) -> None:
    if isinstance(node, exp.Anonymous):
        name = node.name
        if "." in name:
            raise QueryRefusedError(_udf_refusal(name))
        names = [name.upper()]
    else:
        names = [n.upper() for n in type(node).sql_names()]
        if _MODEL_CLASS.match(type(node).__name__):
            raise QueryRefusedError(_model_refusal(names[0]))
    for name in names:
        _refuse_denied_name(name)
        if name.startswith(("AI_", "ML_")):
            raise QueryRefusedError(_model_refusal(name))
        if name == _SESSION_USER and not policy.allow_session_user:
            raise QueryRefusedError(_SESSION_USER_REFUSAL)


def _refuse_denied_name(name: str) -> None:
    reason = _DENIED_FUNCTIONS.get(name.upper())
    if reason is not None:
        raise QueryRefusedError(
            f"{name.upper()} is not allowed: {reason}, and this tool only reads BigQuery "
            f"tables. Remove it and query the tables directly. {_FIX}"
        )


def _check_namespace(node: exp.Dot) -> None:
    prefix = node.this
    namespace = prefix.name if isinstance(prefix, exp.Identifier) else _snippet(prefix)
    call = f"{namespace}.{_snippet(node.expression).split('(', 1)[0]}"
    if namespace.upper() in _MODEL_NAMESPACES:
        raise QueryRefusedError(_model_refusal(call))
    if namespace.upper() not in _ALLOWED_NAMESPACES:
        raise QueryRefusedError(_udf_refusal(call))


def _model_refusal(name: str) -> str:
    return (
        f"{name} is not allowed: ML.* and AI.* functions run models, may call services outside "
        f"BigQuery and cost money. Compute the answer with plain SQL. {_FIX}"
    )


def _udf_refusal(name: str) -> str:
    allowed = ", ".join(f"{n}." for n in sorted(_ALLOWED_NAMESPACES))
    return (
        f"{name} is a user-defined or namespaced function, which is not allowed: only "
        f"built-in functions (and the {allowed} prefixes) may be called. Write the logic "
        "inline with built-in functions."
    )


def _resolve_table(table: exp.Table, root: exp.Expr, policy: GuardPolicy) -> str | None:
    """The fully qualified name `table` reads, or None for a CTE or an array of a FROM item."""
    if not isinstance(table.this, exp.Identifier | exp.Dot):
        function = _snippet(table).split("(", 1)[0]
        if table.db.upper() in _MODEL_NAMESPACES:
            raise QueryRefusedError(_model_refusal(function))
        if isinstance(table.this, exp.Func):
            _check_function(table.this, policy)
        raise QueryRefusedError(
            f"Table-valued functions such as {function} are not allowed. Read the tables "
            f"directly with FROM dataset.table. {_FIX}"
        )
    if is_array_path(table):
        return None
    path = read_path(written_parts(table))
    name = path.name
    if path.dataset is None and ascii_fold(name) in _visible_ctes(table):
        return None
    if path.view is not None:
        if path.dataset is None:
            raise QueryRefusedError(
                f"Qualify INFORMATION_SCHEMA with a dataset, for example "
                f"{policy.default_dataset}.INFORMATION_SCHEMA.{path.view}."
            )
        if path.view not in _INFORMATION_SCHEMA_VIEWS:
            raise QueryRefusedError(
                f"INFORMATION_SCHEMA.{path.view} is not allowed. Use one of: "
                f"{', '.join(sorted(_INFORMATION_SCHEMA_VIEWS))}, qualified with an allowed "
                "dataset."
            )
    project = path.project or policy.project
    dataset = path.dataset or policy.default_dataset
    full_name = f"{project}.{dataset}.{name}"
    if not policy.allows(project, dataset):
        hint = ""
        if path.project is None and ascii_fold(dataset) in _aliases(root):
            hint = f" If {dataset}.{name} is an array column, write UNNEST({dataset}.{name})."
        raise QueryRefusedError(
            f"The query reads {full_name}, which is outside the allowed datasets "
            f"({policy.describe()}). Query only tables in: {policy.describe()}.{hint}"
        )
    return full_name


def _visible_ctes(table: exp.Table) -> set[str]:
    """Case-folded names of the CTEs `table` can refer to where it stands."""
    names: set[str] = set()
    node: exp.Expr = table
    while node.parent is not None:
        parent = node.parent
        if isinstance(parent, exp.With) and isinstance(node, exp.CTE):
            ctes = list(parent.expressions)
            # A CTE sees the ones before it, and itself in WITH RECURSIVE.
            end = ctes.index(node) + (1 if parent.args.get("recursive") else 0)
            names.update(ascii_fold(cte.alias_or_name) for cte in ctes[:end])
            node = parent.parent or parent  # skip the owner's full list of CTEs
            continue
        if isinstance(parent, exp.Query):
            names.update(ascii_fold(cte.alias_or_name) for cte in parent.ctes)
        node = parent
    return names


def _aliases(root: exp.Expr) -> set[str]:
    return {ascii_fold(alias.name) for alias in root.find_all(exp.TableAlias) if alias.name}


def _check_tokens(tokens: list[Token], policy: GuardPolicy) -> None:
    """Backstop over the raw tokens, in case the parse tree hides a name."""
    for index, token in enumerate(tokens):
        if token.token_type == TokenType.PIPE_GT:
            raise QueryRefusedError(f"Pipe syntax (|>) is not supported. {_FIX}")
        if token.token_type in _STRING_TOKENS:
            continue
        word = ascii_fold(token.text).upper()
        if token.token_type == TokenType.VAR and not token.text.isascii():
            raise QueryRefusedError(
                f"`{token.text}` has characters BigQuery does not accept in an unquoted name. "
                "Write names in ASCII letters, digits and underscores, or quote them in backticks."
            )
        following = tokens[index + 1 : index + 4]
        called = bool(following) and following[0].token_type == TokenType.L_PAREN
        if called or word in _NEVER_NAMES:
            _refuse_denied_name(token.text)
        if word == _SESSION_USER and not policy.allow_session_user:
            raise QueryRefusedError(_SESSION_USER_REFUSAL)
        if _is_time_travel(tokens, index) and not policy.allow_time_travel:
            raise QueryRefusedError(_TIME_TRAVEL)
        if (
            word in _MODEL_NAMESPACES
            and len(following) == 3
            and following[0].token_type == TokenType.DOT
            and following[2].token_type == TokenType.L_PAREN
        ):
            raise QueryRefusedError(_model_refusal(f"{token.text}.{following[1].text}"))


def _is_time_travel(tokens: list[Token], index: int) -> bool:
    """Whether tokens[index] starts SYSTEM_TIME (or SYSTEM TIME) after FOR."""
    if index == 0 or tokens[index - 1].token_type != TokenType.FOR:
        return False
    word = ascii_fold(tokens[index].text).upper()
    following = tokens[index + 1 : index + 2]
    return word == "SYSTEM_TIME" or (
        word == "SYSTEM" and bool(following) and ascii_fold(following[0].text).upper() == "TIME"
    )
