"""Every API route that lists stored things answers in pages: `?limit=&offset=`, and a
`Link: <...>; rel="next"` header while there are more. Walking the links gives every item
once; a limit out of range is refused with the range."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hub.api.paging import DEFAULT_LIMIT, MAX_LIMIT
from tests.conftest import RunningHub
from tests.support.owners import owners_and_others

PROMPTS = 7
PAGE = 3
# Every route that lists stored things (`{}`: a name that need not exist: the limit is
# checked first).
LISTS = [
    "/api/agents",
    "/api/agents/nobody/versions",
    "/api/auth/sessions",
    "/api/evaluation/sets",
    "/api/evaluation/runs",
    "/api/evaluation/runs/1/labels",
    "/api/experiments",
    "/api/prompts",
    "/api/prompts/nobody/versions",
    "/api/prompts/nobody/gate-checks",
    "/api/agents/nobody/gate-checks",
    "/api/traces",
    "/api/audit",
    "/api/mcp/servers",
    "/api/mcp/servers/nobody/snapshots",
    "/api/shares",
]


@pytest.fixture
def people(hub: RunningHub) -> Iterator[dict[str, httpx.Client]]:
    with owners_and_others(hub) as clients:
        yield clients


def _prompt(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "A prompt to be listed.",
        "messages": [{"role": "user", "content": "Say {{word}}."}],
        "model": "test-model",
    }


def _walk(client: httpx.Client, path: str, **params: Any) -> list[list[Any]]:
    """Each page of the list at `path`, following the `next` links to the end."""
    pages = []
    response = client.get(path, params=params)
    while True:
        assert response.status_code == 200, response.text
        pages.append(response.json())
        following = response.links.get("next")
        if following is None:
            return pages
        response = client.get(following["url"])


def test_a_list_longer_than_a_page_comes_back_in_pages_with_nothing_missed_or_repeated(
    people: dict[str, httpx.Client],
) -> None:
    names = [f"listed-{n}" for n in range(PROMPTS)]
    for name in names:
        assert people["ada"].post("/api/prompts", json=_prompt(name)).status_code == 201
    root = people["root"]

    # The prompts (a list read whole, then cut) and the audit log (read a page at a time).
    prompt_pages = _walk(root, "/api/prompts", q="listed", limit=PAGE)
    audit_pages = _walk(root, "/api/audit", action="prompt.created", limit=PAGE)
    every_prompt = root.get("/api/prompts", params={"q": "listed"})

    expected_sizes = [PAGE, PAGE, PROMPTS - 2 * PAGE]
    assert [len(page) for page in prompt_pages] == expected_sizes
    assert [item["name"] for page in prompt_pages for item in page] == sorted(names)
    assert [len(page) for page in audit_pages] == expected_sizes
    created = [event["object_id"] for page in audit_pages for event in page]
    assert sorted(created) == sorted(names)  # each once
    # Without a limit, one page of the default size has them all, and no link.
    assert len(every_prompt.json()) == PROMPTS <= DEFAULT_LIMIT
    assert "link" not in every_prompt.headers


def test_the_next_link_keeps_the_query_and_moves_the_offset(
    people: dict[str, httpx.Client],
) -> None:
    for name in ("kept-a", "kept-b", "kept-c"):
        people["ada"].post("/api/prompts", json=_prompt(name))

    first = people["root"].get("/api/prompts", params={"q": "kept", "limit": 2})
    last = people["root"].get("/api/prompts", params={"q": "kept", "limit": 2, "offset": 2})

    assert first.headers["link"] == '</api/prompts?q=kept&offset=2&limit=2>; rel="next"'
    assert [item["name"] for item in last.json()] == ["kept-c"]
    assert "link" not in last.headers


@pytest.mark.parametrize("path", LISTS)
def test_a_limit_out_of_range_is_refused_with_the_range(
    people: dict[str, httpx.Client], path: str
) -> None:
    root = people["root"]
    answers = {
        limit: root.get(path, params={"limit": limit}) for limit in ("0", "-5", str(MAX_LIMIT + 1))
    }
    negative_offset = root.get(path, params={"offset": "-1"})
    huge_offset = root.get(path, params={"offset": str(2**63)})

    assert {limit: answer.status_code for limit, answer in answers.items()} == dict.fromkeys(
        answers, 422
    )
    for limit, answer in answers.items():
        assert answer.json()["detail"] == (
            f"limit must be from 1 to {MAX_LIMIT}; it was {limit}."
        ), path
    assert negative_offset.status_code == 422
    assert negative_offset.json()["detail"] == (
        "offset must be from 0 to 9223372036854775807; it was -1."
    )
    assert huge_offset.status_code == 422, path
    assert huge_offset.json()["detail"] == (
        f"offset must be from 0 to 9223372036854775807; it was {2**63}."
    )
