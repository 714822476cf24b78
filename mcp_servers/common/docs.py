"""A directory of markdown pages as data: pages split into sections, and a small keyword ranking.

Ranking is term frequency per section (sub-linear), weighted by how rare a term is across
sections, boosted when the term is in the section heading or the page title, and scaled by the
share of query terms the section contains. No index files, no dependencies: a docs server holds
a few pages and reads them once at start-up.
"""

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DocSet", "Match", "Page", "Section", "parse_page", "tokenize"]

HEADING_BOOST = 3
TITLE_BOOST = 2
SNIPPET_CHARS = 240
SNIPPET_LEAD = 80

_WORD = re.compile(r"[A-Za-z0-9]+")
_HEADING = re.compile(r"#{2,6}\s+(.+)")
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i if in is it may me my of on or "
    "our the to what when where which who why will with you your".split()
)


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, lightly stemmed words and numbers of `text`, without stop words."""
    words = (_stem(w) for w in _WORD.findall(text.lower()))
    return [w for w in words if w not in _STOPWORDS]


@dataclass(frozen=True)
class Section:
    heading: str
    text: str
    """The section's body with whitespace collapsed, for snippets."""
    terms: Counter[str] = field(repr=False)
    heading_terms: frozenset[str] = field(repr=False)


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    summary: str
    markdown: str
    sections: tuple[Section, ...] = field(repr=False)
    title_terms: frozenset[str] = field(repr=False)


@dataclass(frozen=True)
class Match:
    page: Page
    section: Section
    snippet: str
    score: float


def _section(heading: str, lines: list[str]) -> Section:
    body = " ".join(" ".join(lines).split())
    return Section(
        heading=heading,
        text=body,
        terms=Counter(tokenize(body)),
        heading_terms=frozenset(tokenize(heading)),
    )


def parse_page(slug: str, markdown: str) -> Page:
    """A page from its markdown: a `# Title` first line, then `##` sections.

    Text before the first `##` heading becomes a section headed by the page title, and its first
    paragraph is the page's one-line summary.
    """
    if not _SLUG.fullmatch(slug):
        raise ValueError(f"page name {slug!r} must be lower-case words joined by '-'")
    lines = markdown.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError(f"page {slug!r} must start with a '# Title' line")
    title = lines[0][2:].strip()

    sections: list[Section] = []
    heading, in_fence = title, False
    body: list[str] = []
    for line in lines[1:]:
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        found = None if in_fence else _HEADING.fullmatch(line.strip())
        if found:
            if any(b.strip() for b in body):
                sections.append(_section(heading, body))
            heading, body = found.group(1).strip(), []
        else:
            body.append(line)
    if any(b.strip() for b in body):
        sections.append(_section(heading, body))

    intro = "\n".join(lines[1:]).strip().split("\n\n", 1)[0]
    summary = "" if intro.startswith("#") else " ".join(intro.split())
    return Page(
        slug=slug,
        title=title,
        summary=summary,
        markdown=markdown,
        sections=tuple(sections),
        title_terms=frozenset(tokenize(title)),
    )


def _snippet(text: str, terms: frozenset[str]) -> str:
    """About SNIPPET_CHARS of `text` around the spot where most query terms are close together."""
    hits = [(m.start(), _stem(m.group().lower())) for m in _WORD.finditer(text)]
    hits = [(pos, word) for pos, word in hits if word in terms]
    reach = SNIPPET_CHARS - SNIPPET_LEAD

    def coverage(first: int) -> tuple[int, int]:
        """How many distinct terms follow hit `first` within reach, and how tightly."""
        seen: dict[str, int] = {}
        for pos, word in hits[first:]:
            if pos >= hits[first][0] + reach:
                break
            seen.setdefault(word, pos)
        return len(seen), hits[first][0] - max(seen.values())

    best = max(range(len(hits)), key=coverage) if hits else None
    start = 0 if best is None else max(0, hits[best][0] - SNIPPET_LEAD)
    end = min(len(text), start + SNIPPET_CHARS)
    if start > 0 and (space := text.find(" ", start, end)) != -1:
        start = space + 1
    if end < len(text) and (space := text.rfind(" ", start, end)) > start:
        end = space
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    return f"{prefix}{text[start:end].strip()}{suffix}"


class DocSet:
    """Pages by slug, searchable by keywords."""

    def __init__(self, pages: Iterable[Page]) -> None:
        self._pages = {page.slug: page for page in sorted(pages, key=lambda p: p.slug)}
        sections = [(p, s) for p in self._pages.values() for s in p.sections]
        document_frequency: Counter[str] = Counter()
        for page, section in sections:
            document_frequency.update(set(section.terms) | section.heading_terms | page.title_terms)
        self._idf = {
            term: math.log(1 + len(sections) / count) for term, count in document_frequency.items()
        }

    @classmethod
    def load(cls, docs_dir: Path) -> "DocSet":
        """Every `*.md` file in `docs_dir`, the file name (without `.md`) as the slug."""
        if not docs_dir.is_dir():
            raise ValueError(f"docs directory {docs_dir} does not exist")
        files = sorted(docs_dir.glob("*.md"))
        if not files:
            raise ValueError(f"docs directory {docs_dir} holds no .md pages")
        return cls(parse_page(f.stem, f.read_text(encoding="utf-8")) for f in files)

    @property
    def pages(self) -> list[Page]:
        return list(self._pages.values())

    @property
    def slugs(self) -> list[str]:
        return list(self._pages)

    def get(self, slug: str) -> Page | None:
        return self._pages.get(slug)

    def search(self, query: str, limit: int) -> list[Match]:
        """The best `limit` sections for `query`, best first; empty when no term matches."""
        terms = frozenset(tokenize(query))
        if not terms:
            return []
        matches: list[Match] = []
        for page in self._pages.values():
            for section in page.sections:
                score, matched = 0.0, 0
                for term in terms:
                    tf = (
                        section.terms[term]
                        + HEADING_BOOST * (term in section.heading_terms)
                        + TITLE_BOOST * (term in page.title_terms)
                    )
                    if tf:
                        matched += 1
                        score += (1 + math.log(tf)) * self._idf[term]
                if matched:
                    score *= matched / len(terms)
                    snippet = _snippet(section.text, terms)
                    matches.append(Match(page, section, snippet, round(score, 3)))
        matches.sort(key=lambda m: -m.score)
        return matches[:limit]
