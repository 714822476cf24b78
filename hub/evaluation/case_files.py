"""A test set's file read into cases: CSV with a header row, or JSONL with one object a line.

CSV: every column is a variable except `expected` (the expected output, optional) and `tags`
(optional, separated by `;` or `,`). JSONL: `{"variables": {...}, "expected": "...", "tags":
[...]}` a line; blank lines are skipped. A file is read whole or refused with one message
that names the line (and the column or key) and why, so nothing is ever half-imported.
"""

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import orjson

from hub.core.errors import InvalidError, TooLargeError
from hub.gateway.prompt_calls import MAX_VALUE_CHARS, MAX_VARIABLES
from hub.models.prompt import VARIABLE_NAME

__all__ = [
    "MAX_CASES",
    "MAX_FILE_BYTES",
    "MAX_TAGS",
    "MAX_TAG_CHARS",
    "CaseFile",
    "ParsedCase",
    "read_cases",
]

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_CASES = 10_000
MAX_TAGS = 20
MAX_TAG_CHARS = 100
RESERVED_COLUMNS = ("expected", "tags")
_JSONL_KEYS = ("variables", "expected", "tags")
_VARIABLE = re.compile(VARIABLE_NAME)
_NAME_RULE = "letters, digits and underscores, not starting with a digit"


@dataclass(slots=True)
class ParsedCase:
    variables: dict[str, Any]
    expected: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CaseFile:
    filename: str
    # Every variable the cases give, in the order of the columns (CSV) or of first use (JSONL).
    variables: list[str]
    cases: list[ParsedCase]


class _LineError(Exception):
    def __init__(self, line: int, why: str) -> None:
        super().__init__(f"line {line}: {why}")


def read_cases(data: bytes, filename: str) -> CaseFile:
    """The cases of an uploaded file, its format told by its name (`.csv`, `.jsonl`)."""
    name = PurePosixPath(filename.replace("\\", "/")).name[-255:]
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise InvalidError(
            f"{name or 'The file'!r} is neither .csv nor .jsonl: upload a CSV file with a "
            "header row, or a JSONL file with one JSON object a line."
        )
    if len(data) > MAX_FILE_BYTES:
        raise TooLargeError(
            f"The file is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,} bytes (10 MB)."
        )
    try:
        text = _text(data)
        variables, cases = _csv(text) if suffix == ".csv" else _jsonl(text)
    except _LineError as error:
        raise InvalidError(str(error)) from error
    if not cases:
        raise InvalidError(
            "The file has a header but no cases." if suffix == ".csv" else "The file has no cases."
        )
    if not variables:
        raise InvalidError("No case gives a variable: a case needs at least one.")
    return CaseFile(filename=name, variables=variables, cases=cases)


def _text(data: bytes) -> str:
    if not data.strip():
        raise InvalidError("The file is empty.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise _LineError(
            line, f"not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8"
        ) from error


def _value(line: int, where: str, value: Any) -> Any:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) > MAX_VALUE_CHARS:
        raise _LineError(line, f"{where} is {len(text):,} characters; at most {MAX_VALUE_CHARS:,}")
    return value


def _tags(line: int, tags: list[str]) -> list[str]:
    kept = list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))
    if len(kept) > MAX_TAGS:
        raise _LineError(line, f"{len(kept)} tags; at most {MAX_TAGS}")
    for tag in kept:
        if len(tag) > MAX_TAG_CHARS:
            raise _LineError(line, f"the tag {tag[:20]!r}... is over {MAX_TAG_CHARS} characters")
    return kept


def _counted(line: int, cases: list[ParsedCase]) -> None:
    if len(cases) >= MAX_CASES:
        raise _LineError(line, f"more than {MAX_CASES:,} cases; split the file into test sets")


def _header(names: list[str]) -> list[str]:
    columns = [name.strip() for name in names]
    for number, name in enumerate(columns, start=1):
        if not name:
            raise _LineError(1, f"column {number} of the header has no name")
        if name.lower() not in RESERVED_COLUMNS and not _VARIABLE.fullmatch(name):
            raise _LineError(1, f"the column {name!r} is not a variable name ({_NAME_RULE})")
        if columns.index(name) != number - 1:
            raise _LineError(1, f"the column {name!r} appears twice")
    variables = [name for name in columns if name.lower() not in RESERVED_COLUMNS]
    if len(variables) > MAX_VARIABLES:
        raise _LineError(1, f"{len(variables)} variables; at most {MAX_VARIABLES}")
    return columns


def _csv(text: str) -> tuple[list[str], list[ParsedCase]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns: list[str] | None = None
    cases: list[ParsedCase] = []
    while True:
        # A quoted value may span lines: a row is named by the line it starts on.
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            why = str(error)
            if "field larger than field limit" in why:
                why = f"a value is over {MAX_VALUE_CHARS:,} characters"
            raise _LineError(reader.line_num, f"not valid CSV ({why})") from error
        if not row:
            continue
        if columns is None:
            columns = _header(row)
            continue
        if len(row) != len(columns):
            raise _LineError(start, f"{len(row)} values but the header has {len(columns)} columns")
        _counted(start, cases)
        case = ParsedCase(variables={})
        for name, value in zip(columns, row, strict=True):
            _value(start, f"the value of {name!r}", value)
            if name.lower() == "expected":
                case.expected = value or None
            elif name.lower() == "tags":
                case.tags = _tags(start, re.split(r"[;,]", value))
            else:
                case.variables[name] = value
        cases.append(case)
    if columns is None:
        raise InvalidError("The file is empty.")
    return [name for name in columns if name.lower() not in RESERVED_COLUMNS], cases


def _jsonl(text: str) -> tuple[list[str], list[ParsedCase]]:
    variables: dict[str, None] = {}
    cases: list[ParsedCase] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            where = f"column {error.colno}: {error.msg}"
            raise _LineError(number, f"not valid JSON ({where})") from error
        if not isinstance(item, dict):
            raise _LineError(number, 'a line must be a JSON object such as {"variables": {...}}')
        _counted(number, cases)
        case = _jsonl_case(number, item)
        variables.update(dict.fromkeys(case.variables))
        if len(variables) > MAX_VARIABLES:
            raise _LineError(number, f"more than {MAX_VARIABLES} variables in the file")
        cases.append(case)
    return list(variables), cases


def _jsonl_case(line: int, item: dict[str, Any]) -> ParsedCase:
    unknown = [key for key in item if key not in _JSONL_KEYS]
    if unknown:
        raise _LineError(
            line, f"unknown key {unknown[0]!r}; a line has 'variables', 'expected' and 'tags'"
        )
    values = item.get("variables")
    if not isinstance(values, dict):
        raise _LineError(line, "'variables' must be an object of names and values")
    for name, value in values.items():
        if not _VARIABLE.fullmatch(name):
            raise _LineError(line, f"the variable {name!r} is not a variable name ({_NAME_RULE})")
        _value(line, f"the value of {name!r}", value)
    expected = item.get("expected")
    if expected is not None and not isinstance(expected, str):
        raise _LineError(line, "'expected' must be text (a JSON string) or null")
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise _LineError(line, "'tags' must be a list of strings")
    if expected is not None:
        _value(line, "'expected'", expected)
    return ParsedCase(variables=values, expected=expected, tags=_tags(line, tags))
