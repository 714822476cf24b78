"""The test-set pages as people use them, with a signed-in client posting the upload forms:
the list and its search, a new set and a new version uploaded from the page, a refused file
shown with its line and what was typed, the preview of the cases, and who may upload."""

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from hub.core.roles import Role
from tests.conftest import RunningHub
from tests.support.owners import page_clients

SignIn = Callable[[str], httpx.Client]

CASES_CSV = (
    b"product,ticket,expected,tags\nAtlas,<b>Refund</b>,billing,money;urgent\nBeacon,Crash,,\n"
)


@pytest.fixture
def sign_in(hub: RunningHub) -> Iterator[SignIn]:
    """A browser-like client signed in to the hub as ada (a builder of support), cy (a
    builder of sales) or max (a member of support)."""
    people = [
        ("ada", "support", Role.builder),
        ("cy", "sales", Role.builder),
        ("max", "support", Role.member),
    ]
    with page_clients(hub, people) as client_for:
        yield client_for


def _upload(
    client: httpx.Client, content: bytes, filename: str = "tickets.csv", **fields: str
) -> httpx.Response:
    form = {"name": "tickets", "team": "support", "description": "Support tickets.", **fields}
    return client.post("/evaluation/sets/new", data=form, files={"file": (filename, content)})


def _rows(html: str, table: str) -> list[str]:
    """The ids of a table's rows, in order."""
    body = html.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr id="([^"]+)">', body)


def test_a_set_uploaded_with_the_form_is_listed_and_previewed(sign_in):
    ada = sign_in("ada")
    form = ada.get("/evaluation/sets/new")
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text
    assert '<option value="support" selected>' in form.text

    made = _upload(ada, CASES_CSV)

    assert made.status_code == 303
    assert made.headers["location"] == "/evaluation/sets/tickets"
    page = ada.get("/evaluation/sets/tickets").text
    assert _rows(page, "versions") == ["version-1"]
    assert "<code>product</code>, <code>ticket</code>" in page
    assert "tickets.csv" in page
    assert _rows(page, "cases") == ["case-1", "case-2"]
    assert "<th>product</th><th>ticket</th><th>Expected</th><th>Tags</th>" in page
    # What a file holds is shown as text, never as the page's HTML.
    assert "&lt;b&gt;Refund&lt;/b&gt;" in page and "<b>Refund</b>" not in page
    assert '<span class="badge">money</span> <span class="badge">urgent</span>' in page
    assert "Upload a new version" in page
    cy = sign_in("cy")
    listed = cy.get("/evaluation", params={"q": "support tickets"}).text
    assert "<h2>Test sets</h2>" in listed
    assert '<a href="/evaluation/sets/tickets">tickets</a>' in listed
    assert 'href="/evaluation">Evaluation</a>' in listed
    assert "No test set matches this search" in cy.get("/evaluation", params={"team": "sales"}).text


def test_a_refused_file_comes_back_with_its_line_and_what_was_typed(sign_in):
    ada = sign_in("ada")

    refused = _upload(ada, b"product,ticket\nAtlas,Refund\nBeacon\n", description="Typed here.")

    assert refused.status_code == 422
    assert "line 3: 1 values but the header has 2 columns" in refused.text
    assert 'value="tickets"' in refused.text
    assert "Typed here." in refused.text
    assert ada.get("/api/evaluation/sets").json() == []
    assert "No team has uploaded a test set yet." in ada.get("/evaluation").text


def test_a_new_version_uploaded_from_the_sets_page(sign_in):
    ada = sign_in("ada")
    _upload(ada, CASES_CSV)

    added = ada.post(
        "/evaluation/sets/tickets/versions",
        data={"note": "only one now"},
        files={"file": ("v2.jsonl", b'{"variables": {"ticket": "Hi"}, "tags": ["greeting"]}\n')},
    )
    refused = ada.post(
        "/evaluation/sets/tickets/versions",
        data={"note": "broken"},
        files={"file": ("v3.jsonl", b'{"variables": {"ticket": "Hi"}}\n{"variables": 1}\n')},
    )

    assert added.status_code == 303
    assert refused.status_code == 422
    assert "line 2: &#39;variables&#39; must be an object of names and values" in refused.text
    assert 'value="broken"' in refused.text
    page = ada.get("/evaluation/sets/tickets").text
    assert _rows(page, "versions") == ["version-2", "version-1"]
    assert "only one now" in page and "v2.jsonl" in page
    assert _rows(page, "cases") == ["case-1"]
    assert "Cases of v2" in page
    first = ada.get("/evaluation/sets/tickets", params={"version": 1}).text
    assert "Cases of v1" in first and _rows(first, "cases") == ["case-1", "case-2"]


def test_the_preview_shows_fifty_cases_at_a_time(sign_in):
    ada = sign_in("ada")
    _upload(ada, b"n\n" + b"".join(b"%d\n" % i for i in range(1, 121)))

    first = ada.get("/evaluation/sets/tickets").text
    third = ada.get("/evaluation/sets/tickets", params={"offset": 100}).text

    assert _rows(first, "cases") == [f"case-{i}" for i in range(1, 51)]
    assert "Cases 1 to 50 of 120." in first
    assert "offset=50" in first
    assert _rows(third, "cases") == [f"case-{i}" for i in range(101, 121)]
    assert "Cases 101 to 120 of 120." in third
    assert "Next 50" not in third


def test_only_the_owning_teams_builders_upload_versions_from_the_page(sign_in, hub):
    _upload(sign_in("ada"), CASES_CSV)
    cy, max_ = sign_in("cy"), sign_in("max")

    assert "Upload a new version" not in cy.get("/evaluation/sets/tickets").text
    assert "Upload a new version" not in max_.get("/evaluation/sets/tickets").text
    refused = cy.post("/evaluation/sets/tickets/versions", files={"file": ("v2.csv", CASES_CSV)})
    member = _upload(max_, CASES_CSV, name="mine")

    assert refused.status_code == 403
    assert "Only team &#39;support&#39;&#39;s builders or an admin" in refused.text
    assert member.status_code == 403
    assert "is a member" in member.text
    assert [s["latest_version"] for s in max_.get("/api/evaluation/sets").json()] == [1]
    assert max_.get("/evaluation/sets/nothing").status_code == 404
    signed_out = httpx.get(f"{hub.url}/evaluation/sets/tickets")
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login?next=/evaluation/sets/tickets"
