"""A builder walks evaluation end to end in Chromium: uploads a test set as CSV, runs the prompt
`tickets` over it with a judge prompt, labels the rows, calibrates the judge and reads its
agreement with the labels, binds the prompt's regression gate, and publishes a worse version
from the editor, which the gate refuses, naming the rows that got worse.

The scripted upstream answers each version's tickets in its own way and the scripted judge
scores an answer low when it does not help, so every figure the pages show is worked out here.
"""

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from sqlmodel import Session

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.evaluation import SYSTEM, USER, make_tickets_prompt
from tests.support.owners import as_service
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ROWS = 12
WORSE_SYSTEM = "You answer support tickets tersely."
JUDGE_SYSTEM = "Grade the answer to a support ticket: reply JSON with a score and a reason."
JUDGE_USER = "Input: {{input}}\nAnswer: {{answer}}"


def helps(system: str, n: int) -> bool:
    """Whether the version with `system` answers ticket n helpfully (the judge says so)."""
    return n % 3 != 0 if system == WORSE_SYSTEM else n % 5 != 0


def people_pass(n: int) -> bool:
    return n % 4 != 0


def _ticket(request: dict[str, Any]) -> int:
    text = str(request["messages"][-1]["content"])
    found = re.search(r'"n": "?(\d+)', text) or re.match(r"Ticket (\d+):", text)
    assert found is not None, text
    return int(found.group(1))


def _reply(request: dict[str, Any]) -> str:
    n = _ticket(request)
    first = str(request["messages"][0]["content"])
    if first == JUDGE_SYSTEM:
        helpful = "no idea" not in str(request["messages"][-1]["content"])
        return json.dumps({"score": 0.9 if helpful else 0.1, "reason": f"ticket {n}"})
    return f"answer {n}" if helps(first, n) else f"no idea about ticket {n}"


def agreement(judge: list[bool], people: list[bool]) -> tuple[str, str, list[int]]:
    """The page's accuracy and kappa as it prints them, and the confusion matrix's cells
    (both pass, only the judge passes, only people pass, both fail)."""
    pairs = list(zip(judge, people, strict=True))
    a = sum(j and p for j, p in pairs)
    b = sum(j and not p for j, p in pairs)
    c = sum(p and not j for j, p in pairs)
    d = sum(not j and not p for j, p in pairs)
    observed = (a + d) / len(pairs)
    chance = ((a + b) * (a + c) + (c + d) * (b + d)) / len(pairs) ** 2
    kappa = (observed - chance) / (1 - chance)
    return f"{observed * 100:.1f}%", f"{kappa:.3f}", [a, b, c, d]


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    return hub_settings.model_copy(update={"eval_poll_interval_s": 0.05})


@pytest.fixture
def page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`")
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def _cases_file(folder: Path) -> Path:
    path = folder / "tickets.csv"
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["n", "text", "expected"])
        writer.writerows([n, f"printer {n} is jammed", f"answer {n}"] for n in range(1, ROWS + 1))
    return path


def test_upload_run_label_calibrate_and_a_worse_version_is_refused_by_the_gate(
    hub: RunningHub, upstream: ScriptedUpstream, page: Page, tmp_path: Path
) -> None:
    upstream.reply_for = _reply
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(
            session=session, username="ben", password="pw-ben", team="qa", role=Role.builder
        )
    with as_service(hub, hub.new_service("qa-bot", team="qa")) as qa:
        make_tickets_prompt(qa)
        judge = {
            "name": "ticket-judge",
            "model": "test-model",
            "messages": [
                {"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": JUDGE_USER},
            ],
        }
        made = qa.post("/api/prompts", json=judge)
        assert made.status_code == 201, made.text

    page.goto(f"{hub.url}/login")
    page.fill("input[name=username]", "ben")
    page.fill("input[name=password]", "pw-ben")
    page.locator("button[type=submit]").last.click()

    # Upload the test set.
    page.goto(f"{hub.url}/evaluation/sets/new")
    page.fill("#name", "tickets")
    page.select_option("#team", "qa")
    page.set_input_files("#file", str(_cases_file(tmp_path)))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/evaluation/sets/tickets")
    expect(page.locator("td.cases").first).to_have_text(str(ROWS))

    # Run production (v1) over it with the judge prompt.
    page.goto(f"{hub.url}/evaluation/runs/new?set=tickets&prompt=tickets")
    page.fill("#judge_prompt", "ticket-judge")
    page.click("#estimate-button")
    expect(page.locator("#estimate")).to_contain_text(f"for {ROWS} cases")
    page.click("#start-button")
    page.wait_for_url(re.compile(r".*/evaluation/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#status")).to_have_text("finished", timeout=60_000)
    judged = [helps(SYSTEM, n) for n in range(1, ROWS + 1)]
    expect(page.locator("#progress-text")).to_contain_text(f"{ROWS} of {ROWS} cases answered")

    # Label every row as people see it.
    page.goto(f"{hub.url}/evaluation/runs/{run_id}/label")
    rows = page.locator("#rows tr[id^=case-]")
    expect(rows).to_have_count(ROWS)
    tickets = {}
    for i in range(ROWS):
        row = rows.nth(i)
        found = re.search(r"printer (\d+) is jammed", row.inner_text())
        assert found is not None
        tickets[str(row.get_attribute("id"))] = int(found.group(1))
    for row_id, n in tickets.items():
        row = page.locator(f"#{row_id}")
        row.locator("input[name=note]").fill(f"person on ticket {n}")
        row.get_by_role("button", name="Pass" if people_pass(n) else "Fail").click()
        expect(page.locator(f"#{row_id}").locator(".badge")).to_have_text(
            "pass" if people_pass(n) else "fail"
        )
    expect(page.locator("#labelled")).to_have_text(str(ROWS))

    # Calibrate the judge on those labels and read its agreement.
    page.goto(f"{hub.url}/evaluation/judges/ticket-judge")
    page.fill("#run", str(run_id))
    page.get_by_role("button", name="Calibrate").click()
    calibration = page.locator("#calibrations tr[id^=calibration-]").first
    expect(calibration).to_be_visible()
    number = str(calibration.get_attribute("id")).removeprefix("calibration-")
    accuracy, kappa, cells = agreement(judged, [people_pass(n) for n in range(1, ROWS + 1)])
    expect(page.locator(f"#accuracy-{number}")).to_have_text(accuracy)
    expect(page.locator(f"#kappa-{number}")).to_have_text(kappa)
    names = ["both_pass", "judge_pass_people_fail", "judge_fail_people_pass", "both_fail"]
    for name, count in zip(names, cells, strict=True):
        expect(page.locator(f"#{name}-{number}")).to_have_text(str(count))

    # Bind the gate: the test set, the judge prompt, no margin.
    page.goto(f"{hub.url}/prompts/tickets")
    page.fill("#gate-set", "tickets")
    page.fill("#gate-margin", "0")
    page.fill("#gate-judge-prompt", "ticket-judge")
    page.click("#gate-save")
    expect(page.locator("#gate-set-link")).to_have_text("tickets")

    # Publish a worse version from the editor: the gate refuses it.
    page.goto(f"{hub.url}/prompts/tickets/edit")
    page.locator("#messages textarea").nth(0).fill(WORSE_SYSTEM)
    expect(page.locator("#messages textarea").nth(1)).to_have_value(USER)
    page.get_by_role("button", name="Save and make production").click()
    page.wait_for_url(re.compile(r".*/prompts/tickets/gate-checks/\d+$"))
    expect(page.locator("#gate-status")).to_have_text("refused", timeout=90_000)
    worse = [n for n in range(1, ROWS + 1) if helps(SYSTEM, n) and not helps(WORSE_SYSTEM, n)]
    assert worse, "the scripted versions must differ on some rows"
    expect(page.locator("#worse-rows tr[id^=worse-]")).to_have_count(len(worse))
    for n in worse:
        expect(page.locator(f"#worse-{n}")).to_contain_text(f"no idea about ticket {n}")
    candidate = [helps(WORSE_SYSTEM, n) for n in range(1, ROWS + 1)]
    expect(page.locator("#baseline-score")).to_have_text(f"{sum(judged) / ROWS * 100:.1f}%")
    expect(page.locator("#candidate-score")).to_have_text(f"{sum(candidate) / ROWS * 100:.1f}%")

    page.goto(f"{hub.url}/prompts/tickets")
    expect(page.locator("#production-badge")).to_have_text("v1 in production")
