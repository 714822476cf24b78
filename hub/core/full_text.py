"""Plain-word full-text queries for the database's own index (SQLite FTS5, PostgreSQL's
tsvector), shared by the chat's search of one's conversations and the hub's search of the
conversations shared with one.

A person's words are reduced to plain words (letters and digits) before they reach the
database, so nothing they type can change the query's syntax: on SQLite each word becomes a
quoted FTS5 string, on PostgreSQL a quoted tsquery lexeme, and both go as bound parameters.
Every word must match; the last one may be the start of a word, so a search can be typed as
it is read.
"""

import re

__all__ = ["MAX_WORDS", "fts5_match", "snippet_of", "tsquery", "word_count", "words_of"]

MAX_WORDS = 32
SNIPPET_CHARACTERS = 160
_WORD = re.compile(r"[^\W_]+")


def words_of(query: str) -> list[str]:
    """The distinct words of `query`, lower-cased, in order, at most MAX_WORDS."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        seen.setdefault(word, None)
    return list(seen)[:MAX_WORDS]


def word_count(query: str) -> int:
    """How many words `query` has, repeats included (to refuse an overlong search)."""
    return len(_WORD.findall(query))


def fts5_match(words: list[str]) -> str:
    """An FTS5 MATCH expression: every word, the last as a prefix."""
    quoted = [f'"{word}"' for word in words]
    return " ".join(quoted) + "*"


def tsquery(words: list[str]) -> str:
    """A PostgreSQL tsquery ('simple' configuration): every word, the last as a prefix."""
    lexemes = [f"'{word}'" for word in words]
    return " & ".join(lexemes) + ":*"


def snippet_of(body: str, words: list[str]) -> str:
    """About SNIPPET_CHARACTERS of `body` around the first of `words` in it, on one line."""
    flat = " ".join(body.split())
    lowered = flat.lower()
    found = [
        match.start()
        for word in words
        if (match := re.search(rf"(?<![^\W_]){re.escape(word)}", lowered)) is not None
    ]
    at = min(found, default=0)
    start = max(0, at - SNIPPET_CHARACTERS // 3)
    end = min(len(flat), start + SNIPPET_CHARACTERS)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")
