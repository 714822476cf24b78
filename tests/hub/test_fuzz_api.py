"""Every operation of the hub's OpenAPI document, called by schemathesis with generated
requests over HTTP, as a service (its bearer token), as a person (signed in, the session
cookie) and as nobody: no answer is a server error, none breaks its own declared schema, none
hangs (each request has a deadline).

`make test` runs a few examples per operation; `make fuzz` (SWITCHBOARD_FUZZ_EXAMPLES, default
there 100) runs more. What a run found is printed: operations, cases, failures.
"""

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from hub.core.roles import Role
from tests.conftest import RunningHub
from tests.support.owners import as_person, owners_and_others, page_clients

# Examples per operation and caller; `make fuzz` sets more.
EXAMPLES = int(os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES", "5"))
# A request still unanswered after this is a hang.
REQUEST_TIMEOUT_S = 20.0


@dataclass
class Findings:
    operations: int = 0
    cases: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)

    def summary(self) -> str:
        answers = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        lines = [
            f"{self.operations} operations, {self.cases} cases, {len(self.failures)} failing "
            f"operations; answers {answers}"
        ]
        lines += [f"  {where}: {what}" for where, what in sorted(self.failures.items())]
        return "\n".join(lines)


@pytest.fixture
def callers(hub: RunningHub) -> Iterator[dict[str, dict[str, Any]]]:
    """Headers and cookies of each kind of caller: a team's service, the admin person `ada`
    as the chat app calls for her and signed in to the hub herself (its session cookie), and
    nobody."""
    with page_clients(hub, [("ada", "alpha", Role.admin)]) as signed_in:
        session = signed_in("ada")
        with as_person(hub, "ada") as chat_app:
            yield {
                "service": {
                    "headers": {"Authorization": f"Bearer {hub.new_service('fuzz-bot', 'alpha')}"},
                    "cookies": {},
                },
                "person": {"headers": dict(chat_app.headers), "cookies": {}},
                "signed-in": {"headers": {"Origin": hub.url}, "cookies": dict(session.cookies)},
                "nobody": {"headers": {}, "cookies": {}},
            }


def _fuzz(operation: Any, caller: dict[str, Any], findings: Findings) -> None:
    """Up to EXAMPLES generated cases of `operation`; the first failure of each is kept."""
    where = f"{operation.method.upper()} {operation.path}"

    @hypothesis.given(case=operation.as_strategy())
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    def run(case: Any) -> None:
        findings.cases += 1
        response = case.call(
            headers=caller["headers"], cookies=caller["cookies"], timeout=REQUEST_TIMEOUT_S
        )
        findings.statuses[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    try:
        run()
    except (Exception, BaseExceptionGroup) as error:  # every kind of failure is a finding
        findings.failures.setdefault(where, f"{type(error).__name__}: {str(error)[:600]}")


@pytest.mark.parametrize("caller_kind", ["service", "person", "signed-in", "nobody"])
def test_no_operation_fails_or_breaks_its_schema_for_any_caller(
    hub: RunningHub, callers: dict[str, dict[str, Any]], caller_kind: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{hub.url}/openapi.json")
    findings = Findings()
    for result in schema.get_all_operations():
        operation = result.ok()
        findings.operations += 1
        _fuzz(operation, callers[caller_kind], findings)

    print(f"{caller_kind}: {findings.summary()}")
    assert findings.cases >= findings.operations > 0
    assert not findings.failures, findings.summary()


def test_an_id_too_large_for_the_database_is_a_clear_422(hub: RunningHub) -> None:
    too_large = 2**63  # one more than a signed 64-bit integer holds
    with owners_and_others(hub) as clients:
        admin = clients["root"]
        answers = [
            admin.get(f"/api/evaluation/runs/{too_large}"),
            admin.get(f"/api/experiments/{too_large}/calls"),
            admin.post(f"/api/evaluation/runs/{too_large}/cancel"),
        ]

    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert "less than or equal to 9223372036854775807" in answer.json()["detail"]


def test_a_422_answer_has_the_shape_the_openapi_document_declares(hub: RunningHub) -> None:
    schema = httpx.get(f"{hub.url}/openapi.json").json()
    declared = schema["components"]["schemas"]["HTTPValidationError"]

    with owners_and_others(hub) as clients:
        answer = clients["root"].get("/api/mcp/servers", params={"limit": 501})

    assert answer.status_code == 422
    assert set(answer.json()) == set(declared["properties"]) == {"detail"}
    assert declared["properties"]["detail"]["type"] == "string"
    assert isinstance(answer.json()["detail"], str)
    assert "limit" in answer.json()["detail"]
