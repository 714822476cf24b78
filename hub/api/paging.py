"""Pages of the API's lists. Every route that lists stored things takes `?limit=` (how many,
1 to `MAX_LIMIT`, `DEFAULT_LIMIT` when not given) and `?offset=` (how many to skip), answers
the list as before, and when there are more sends `Link: </the/path?...&offset=N>;
rel="next"`, the same request for the next page. No such header: that was the last page."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, TypeVar
from urllib.parse import quote

from fastapi import Depends, Query, Request, Response

from hub.core.errors import InvalidError

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "MAX_OFFSET", "Page", "PageDep"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
# What the database can skip to (a signed 64-bit integer): beyond it, a clear 422.
MAX_OFFSET = 2**63 - 1

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page:
    offset: int
    limit: int
    request: Request
    response: Response

    @property
    def fetch(self) -> int:
        """How many rows to read from `offset`: one more than the page says whether there is a
        next one."""
        return self.limit + 1

    def answer(self, rows: Sequence[T]) -> list[T]:
        """The page from `rows` read from `offset` (at most `fetch` of them), with the link to
        the next page when there is one."""
        if len(rows) > self.limit:
            following = self.request.url.include_query_params(
                offset=self.offset + self.limit, limit=self.limit
            )
            self.response.headers["link"] = (
                f'<{quote(following.path)}?{following.query}>; rel="next"'
            )
        return list(rows[: self.limit])

    def of(self, items: Sequence[T]) -> list[T]:
        """The page of a whole list."""
        return self.answer(items[self.offset : self.offset + self.fetch])


async def _page(
    request: Request,
    response: Response,
    limit: Annotated[
        int, Query(description=f"how many, 1 to {MAX_LIMIT}; the next page's link is in `Link`")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(description="how many to skip")] = 0,
) -> Page:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidError(f"limit must be from 1 to {MAX_LIMIT}; it was {limit}.")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidError(f"offset must be from 0 to {MAX_OFFSET}; it was {offset}.")
    return Page(offset=offset, limit=limit, request=request, response=response)


PageDep = Annotated[Page, Depends(_page)]
