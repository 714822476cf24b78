"""The prompt pages as people use them, with a signed-in client posting the forms: the
library and its search, saving versions, refusals shown with what was typed, and who may
change a prompt."""

from collections.abc import Callable, Iterator

import httpx
import pytest

from hub.core.roles import Role
from tests.conftest import RunningHub
from tests.support.owners import page_clients

SignIn = Callable[[str], httpx.Client]


@pytest.fixture
def sign_in(hub: RunningHub) -> Iterator[SignIn]:
    """A browser-like client signed in to the hub as ada or ben (builders of support), cy (a
    builder of sales) or max (a member of support)."""
    people = [
        ("ada", "support", Role.builder),
        ("ben", "support", Role.builder),
        ("cy", "sales", Role.builder),
        ("max", "support", Role.member),
    ]
    with page_clients(hub, people) as client_for:
        yield client_for


def _form(**changes: str | list[str]) -> dict[str, str | list[str]]:
    return {
        "name": "ticket-triage",
        "team": "support",
        "description": "Sorts a support ticket into a queue.",
        "role": ["system", "user"],
        "content": ["You sort tickets for {{product}} into queues.", "Ticket: {{ticket}}"],
        "model": "test-model",
        "parameter:temperature": "0.1",
        "parameter:max_tokens": "50",
        "parameter:stop": "END\nSTOP",
        "response_format": "",
        "note": "First cut.",
        **changes,
    }


def test_a_prompt_made_with_the_form_is_in_the_library_and_found_by_search(sign_in):
    ada = sign_in("ada")

    made = ada.post("/prompts/new", data=_form())

    assert made.status_code == 303
    assert made.headers["location"] == "/prompts/ticket-triage"
    saved = ada.get("/api/prompts/ticket-triage").json()
    assert saved["team"] == "support"
    assert saved["variables"] == ["product", "ticket"]
    assert saved["production"]["parameters"] == {
        "temperature": 0.1,
        "max_tokens": 50,
        "stop": ["END", "STOP"],
    }
    assert saved["production"]["messages"][1] == {"role": "user", "content": "Ticket: {{ticket}}"}
    page = ada.get("/prompts/ticket-triage").text
    assert "v1 in production" in page
    assert "Make v1 production" not in page
    cy = sign_in("cy")
    assert "ticket-triage" in cy.get("/prompts", params={"q": "support ticket"}).text
    assert "ticket-triage" not in cy.get("/prompts", params={"q": "invoice"}).text
    assert "No prompt matches this search" in cy.get("/prompts", params={"team": "sales"}).text


def test_a_version_saved_from_the_editor_and_made_production_at_once(sign_in):
    ada = sign_in("ada")
    ada.post("/prompts/new", data=_form())
    editor = ada.get("/prompts/ticket-triage/edit")
    assert "You sort tickets for {{product}} into queues." in editor.text

    saved = ada.post(
        "/prompts/ticket-triage/edit",
        data=_form(
            content=["Sort tickets for {{product}}.", "Ticket: {{ticket}}"], action="production"
        ),
    )

    assert saved.status_code == 303
    prompt = ada.get("/api/prompts/ticket-triage").json()
    assert prompt["production_version"] == 2
    assert prompt["production"]["messages"][0]["content"] == "Sort tickets for {{product}}."
    diff = ada.get("/prompts/ticket-triage/diff").text
    assert "-  You sort tickets for {{product}} into queues." in diff
    assert "+  Sort tickets for {{product}}." in diff


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"response_format": "{not json"}, "The response format is not valid JSON"),
        ({"response_format": "[1, 2]"}, "must be a JSON schema object"),
        ({"parameter:temperature": "7"}, "less than or equal to 2"),
        ({"content": ["You sort {{ product }}.", ""]}, "is not a placeholder"),
        ({"content": ["", ""]}, "Write at least one message."),
        ({"model": "gpt-nowhere"}, "not in the catalog"),
        ({"name": "Ticket Triage"}, "name: String should match pattern"),
    ],
)
def test_a_refused_form_comes_back_with_the_reason_and_what_was_typed(sign_in, changes, said):
    ada = sign_in("ada")

    refused = ada.post("/prompts/new", data=_form(**changes))

    assert refused.status_code == 422
    assert said in refused.text
    assert "Sorts a support ticket into a queue." in refused.text
    assert ada.get("/api/prompts").json() == []


def test_only_the_owning_teams_builders_change_a_prompt(sign_in):
    sign_in("ada").post("/prompts/new", data=_form())
    ben, cy, max_ = sign_in("ben"), sign_in("cy"), sign_in("max")

    assert "Make v" not in cy.get("/prompts/ticket-triage").text
    assert 'id="rollback"' not in max_.get("/prompts/ticket-triage").text
    for outsider, said in ((cy, "builders or an admin can change"), (max_, "is a member;")):
        refused = outsider.post("/prompts/ticket-triage/edit", data=_form())
        assert refused.status_code == 403
        assert said in refused.text
        assert outsider.post("/prompts/ticket-triage/rollback").status_code == 403
    assert ben.post("/prompts/ticket-triage/edit", data=_form()).status_code == 303
    assert ben.post("/prompts/ticket-triage/production", data={"version": "2"}).status_code == 303
    assert ben.get("/api/prompts/ticket-triage").json()["production_version"] == 2


def test_missing_prompts_and_versions_are_a_404_page(sign_in):
    ada = sign_in("ada")
    assert ada.get("/prompts/nowhere").status_code == 404
    ada.post("/prompts/new", data=_form())
    missing = ada.get("/prompts/ticket-triage/diff", params={"from": 1, "to": 9})
    assert missing.status_code == 404
    assert "has no version 9" in missing.text
    assert ada.get("/prompts/ticket-triage/diff", params={"from": "x"}).status_code == 422


def test_signed_out_people_are_sent_to_sign_in(hub: RunningHub):
    with httpx.Client(base_url=hub.url, timeout=30) as nobody:
        page = nobody.get("/prompts/new")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/prompts/new"
