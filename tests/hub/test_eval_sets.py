"""Test sets over real HTTP, on SQLite and PostgreSQL: CSV and JSONL uploads read into cases,
numbered versions, one clear message naming the line of a malformed file with nothing left
behind, the size limit, who may upload, and the audit log."""

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session, func, select

from hub.core.db import get_engine
from hub.evaluation.case_files import MAX_FILE_BYTES
from hub.models.evaluation import EvalCase, EvalSet, EvalSetVersion
from tests.conftest import RunningHub
from tests.support.owners import owners_and_others

SETS = "/api/evaluation/sets"
LIMIT = f"{MAX_FILE_BYTES:,}"
# The upload's body: the file, and room for the form around it.
BODY_LIMIT = MAX_FILE_BYTES + 64 * 1024


def _over_the_body_limit(size: str) -> str:
    return (
        f"The request body is {size} bytes; the limit for a test set upload is "
        f"{BODY_LIMIT:,} bytes. The file may hold {LIMIT} bytes (10 MB); split it into "
        "smaller test sets."
    )


TICKETS_CSV = (
    # A byte-order mark, as spreadsheets write it; a value over two lines; tags split both ways.
    "\ufeffproduct,expected,ticket,tags\n"
    'Atlas,billing,"I was charged twice,\nplease help",urgent;money\n'
    'Atlas,,Search is slow,"perf, search "\n'
    "\n"
    "Beacon,login,Cannot sign in,\n"
).encode()

TICKETS_JSONL = b"\n".join(
    [
        b'{"variables": {"product": "Atlas", "ticket": "Refund?"}, "expected": "billing", '
        b'"tags": ["money"]}',
        b"",
        b'{"variables": {"product": "Beacon", "ticket": "Crash", "retries": 3}, "expected": null}',
        b'{"variables": {"ticket": "Hello", "context": {"plan": "pro"}}, "tags": []}',
        b"",
    ]
)


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


@pytest.fixture
def people(hub: RunningHub) -> Iterator[dict[str, httpx.Client]]:
    """Alpha's builder and member, beta's builder, an admin, alpha's service, and nobody."""
    with owners_and_others(hub) as clients:
        yield clients


def _create(
    client: httpx.Client, filename: str, content: bytes, name: str = "tickets", **fields: str
) -> httpx.Response:
    return client.post(SETS, data={"name": name, **fields}, files={"file": (filename, content)})


def _add(
    client: httpx.Client, filename: str, content: bytes, name: str = "tickets", note: str = ""
) -> httpx.Response:
    return client.post(
        f"{SETS}/{name}/versions", data={"note": note}, files={"file": (filename, content)}
    )


def _cases(client: httpx.Client, version: int, **params: int) -> list[dict[str, Any]]:
    answer = client.get(f"{SETS}/tickets/versions/{version}/cases", params=params)
    assert answer.status_code == 200, answer.text
    cases: list[dict[str, Any]] = answer.json()["cases"]
    return cases


def _rows_in_tables(hub: RunningHub) -> tuple[int, int, int]:
    """How many sets, versions and cases the database holds."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        return (
            session.exec(select(func.count()).select_from(EvalSet)).one(),
            session.exec(select(func.count()).select_from(EvalSetVersion)).one(),
            session.exec(select(func.count()).select_from(EvalCase)).one(),
        )


def _audit(people: dict[str, httpx.Client]) -> list[dict[str, Any]]:
    answer = people["root"].get("/api/audit", params={"action": "eval_set.*"})
    assert answer.status_code == 200, answer.text
    return sorted(answer.json(), key=lambda event: event["id"])


def test_a_csv_upload_keeps_the_columns_order_the_expected_outputs_and_the_tags(people):
    made = _create(people["ada"], "tickets.csv", TICKETS_CSV, description="Support tickets.")

    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["name"], body["team"], body["created_by"], body["latest_version"]) == (
        "tickets",
        "alpha",
        "ada",
        1,
    )
    [version] = body["versions"]
    assert (version["number"], version["cases"], version["filename"]) == (1, 3, "tickets.csv")
    assert version["variables"] == ["product", "ticket"]
    assert _cases(people["bob"], 1) == [
        {
            "position": 1,
            "variables": {"product": "Atlas", "ticket": "I was charged twice,\nplease help"},
            "expected": "billing",
            "tags": ["urgent", "money"],
        },
        {
            "position": 2,
            "variables": {"product": "Atlas", "ticket": "Search is slow"},
            "expected": None,
            "tags": ["perf", "search"],
        },
        {
            "position": 3,
            "variables": {"product": "Beacon", "ticket": "Cannot sign in"},
            "expected": "login",
            "tags": [],
        },
    ]


def test_a_jsonl_upload_keeps_each_value_as_given_and_every_variable_in_order_of_first_use(
    people,
):
    made = _create(people["ada"], "tickets.jsonl", TICKETS_JSONL)

    assert made.status_code == 201, made.text
    assert made.json()["versions"][0]["variables"] == ["product", "ticket", "retries", "context"]
    cases = _cases(people["bob"], 1)
    assert [(c["position"], c["variables"], c["expected"], c["tags"]) for c in cases] == [
        (1, {"product": "Atlas", "ticket": "Refund?"}, "billing", ["money"]),
        (2, {"product": "Beacon", "ticket": "Crash", "retries": 3}, None, []),
        (3, {"ticket": "Hello", "context": {"plan": "pro"}}, None, []),
    ]


def _thousand_rows() -> tuple[bytes, list[dict[str, Any]]]:
    """A CSV file of 1,000 cases and, made apart from it, the cases it should become."""
    expected = []
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["question", "tags", "lang", "expected"])
    for i in range(1, 1001):
        question = f'Row {i}: what is {i} * 7, "quoted"?'
        lang = ["en", "fr", "de"][i % 3]
        tags = ["even" if i % 2 == 0 else "odd", *(["fizz"] if i % 3 == 0 else [])]
        writer.writerow([question, ";".join(tags), lang, str(i * 7)])
        expected.append(
            {
                "position": i,
                "variables": {"question": question, "lang": lang},
                "expected": str(i * 7),
                "tags": tags,
            }
        )
    return out.getvalue().encode(), expected


def test_a_thousand_row_file_becomes_a_thousand_cases(people, hub):
    content, expected = _thousand_rows()

    made = _create(people["ada"], "arithmetic.csv", content)

    assert made.status_code == 201, made.text
    assert made.json()["versions"][0]["cases"] == 1000
    listed = people["bob"].get(SETS).json()
    assert [(s["name"], s["latest_version"], s["cases"]) for s in listed] == [("tickets", 1, 1000)]
    every = _cases(people["bob"], 1, limit=1000)
    assert len(every) == 1000
    assert [every[i] for i in (0, 1, 2, 499, 998, 999)] == [
        expected[i] for i in (0, 1, 2, 499, 998, 999)
    ]
    assert every == expected
    page = people["bob"].get(f"{SETS}/tickets/versions/1/cases", params={"offset": 990}).json()
    assert (page["total"], page["offset"], page["limit"]) == (1000, 990, 100)
    assert [c["position"] for c in page["cases"]] == list(range(991, 1001))
    assert _rows_in_tables(hub) == (1, 1, 1000)


def test_versions_are_numbered_and_each_keeps_its_own_cases(people):
    _create(people["ada"], "tickets.csv", TICKETS_CSV)

    second = _add(people["ada"], "tickets.jsonl", TICKETS_JSONL, note="from the new export")
    third = _add(people["service"], "small.csv", b"ticket\nHi\n")

    assert second.status_code == 201, second.text
    assert third.status_code == 201, third.text
    assert (second.json()["number"], second.json()["note"]) == (2, "from the new export")
    assert (third.json()["number"], third.json()["created_by"]) == (3, "alpha-bot")
    got = people["bob"].get(f"{SETS}/tickets").json()
    assert got["latest_version"] == 3
    assert [(v["number"], v["cases"], v["filename"]) for v in got["versions"]] == [
        (3, 1, "small.csv"),
        (2, 3, "tickets.jsonl"),
        (1, 3, "tickets.csv"),
    ]
    assert [c["variables"]["ticket"] for c in _cases(people["bob"], 1)] == [
        "I was charged twice,\nplease help",
        "Search is slow",
        "Cannot sign in",
    ]
    assert _cases(people["bob"], 3) == [
        {"position": 1, "variables": {"ticket": "Hi"}, "expected": None, "tags": []}
    ]
    assert people["bob"].get(f"{SETS}/tickets/versions/4/cases").status_code == 404
    assert people["bob"].get(f"{SETS}/nothing").status_code == 404
    # No route changes or deletes a version.
    for method in ("PUT", "PATCH", "DELETE"):
        assert people["ada"].request(method, f"{SETS}/tickets/versions/1").status_code in (404, 405)


def _many(rows: int) -> bytes:
    return b"a\n" + b"x\n" * rows


# (file name, content, the one message the upload gets)
MALFORMED: list[tuple[str, bytes, str]] = [
    ("t.csv", b"a,b\n1,2\n\n3,4,5\n", "line 4: 3 values but the header has 2 columns"),
    ("t.csv", b"a,b\n1,2\n3\n", "line 3: 1 values but the header has 2 columns"),
    ("t.csv", b'a,b\n1,"2"x\n', "line 2: not valid CSV (',' expected after '\"')"),
    (
        "t.csv",
        b"a,2b\n1,2\n",
        "line 1: the column '2b' is not a variable name (letters, digits and underscores, "
        "not starting with a digit)",
    ),
    ("t.csv", b"a,,b\n1,2,3\n", "line 1: column 2 of the header has no name"),
    ("t.csv", b"a,b,a\n1,2,3\n", "line 1: the column 'a' appears twice"),
    ("t.csv", b"a,expected\n", "The file has a header but no cases."),
    ("t.csv", b"expected,tags\nyes,t\n", "No case gives a variable: a case needs at least one."),
    ("t.csv", b"", "The file is empty."),
    ("t.jsonl", b"\n  \n", "The file is empty."),
    ("t.csv", b"a\nok\n\xff\xfe\n", "line 3: not UTF-8 text (byte 0xff); save the file as UTF-8"),
    (
        "t.csv",
        b"a\n" + b"x" * 100_001 + b"\n",
        "line 2: the value of 'a' is 100,001 characters; at most 100,000",
    ),
    (
        "t.csv",
        b"a,tags\nx," + b";".join(b"t%d" % i for i in range(21)) + b"\n",
        "line 2: 21 tags; at most 20",
    ),
    ("t.csv", _many(10_001), "line 10002: more than 10,000 cases; split the file into test sets"),
    (
        "t.jsonl",
        b'{"variables": {"a": 1}}\n' * 11 + b'{"variables": [1, 2]}\n',
        "line 12: 'variables' must be an object of names and values",
    ),
    (
        "t.jsonl",
        b'{"variables": {"a": 1}}\n[1]\n',
        'line 2: a line must be a JSON object such as {"variables": {...}}',
    ),
    (
        "t.jsonl",
        b'{"variables": {"a": 1}}\n{"variables": {"a": 1}, "expect": "x"}\n',
        "line 2: unknown key 'expect'; a line has 'variables', 'expected' and 'tags'",
    ),
    (
        "t.jsonl",
        b'{"variables": {"my var": 1}}\n',
        "line 1: the variable 'my var' is not a variable name (letters, digits and "
        "underscores, not starting with a digit)",
    ),
    (
        "t.jsonl",
        b'{"variables": {"a": 1}, "expected": 42}\n',
        "line 1: 'expected' must be text (a JSON string) or null",
    ),
    (
        "t.jsonl",
        b'{"variables": {"a": 1}, "tags": "x"}\n',
        "line 1: 'tags' must be a list of strings",
    ),
    ("t.jsonl", b'{"tags": []}\n', "line 1: 'variables' must be an object of names and values"),
    (
        "t.txt",
        b"a\nb\n",
        "'t.txt' is neither .csv nor .jsonl: upload a CSV file with a header row, or a JSONL "
        "file with one JSON object a line.",
    ),
]


def test_a_malformed_file_gets_one_message_naming_the_line_and_nothing_is_made(people, hub):
    said = [_create(people["ada"], name, content) for name, content, _ in MALFORMED]

    assert [(answer.status_code, answer.json()["detail"]) for answer in said] == [
        (422, message) for _, _, message in MALFORMED
    ]
    assert people["ada"].get(SETS).json() == []
    assert people["ada"].get(f"{SETS}/tickets").status_code == 404
    assert _rows_in_tables(hub) == (0, 0, 0)
    assert _audit(people) == []


def test_json_that_does_not_parse_is_named_by_its_line(people):
    content = (
        b'{"variables": {"a": 1}}\n\n{"variables": {"a": 2}}\n' * 2 + b'{"variables": {"a": 3}\n'
    )

    said = _create(people["ada"], "t.jsonl", content)

    assert said.status_code == 422
    assert said.json()["detail"].startswith("line 7: not valid JSON (column ")


def test_a_malformed_new_version_leaves_the_set_as_it_was(people, hub):
    _create(people["ada"], "tickets.csv", TICKETS_CSV)

    said = _add(people["ada"], "tickets.csv", TICKETS_CSV + b"a,b,c,d,e\n", note="broken")

    assert said.status_code == 422
    assert said.json()["detail"] == "line 7: 5 values but the header has 4 columns"
    got = people["ada"].get(f"{SETS}/tickets").json()
    assert (got["latest_version"], [v["number"] for v in got["versions"]]) == (1, [1])
    assert people["ada"].get(f"{SETS}/tickets/versions/2/cases").status_code == 404
    assert _rows_in_tables(hub) == (1, 1, 3)
    assert [e["action"] for e in _audit(people)] == ["eval_set.created"]
    # The next good upload takes the next number.
    assert _add(people["ada"], "tickets.csv", TICKETS_CSV).json()["number"] == 2


def test_a_file_over_the_size_limit_is_refused_with_the_limit(people, hub):
    just_over = b"a\n" + b"x" * (MAX_FILE_BYTES - 1)
    far_over = b"a\n" + b"x" * (MAX_FILE_BYTES + 200_000)

    files = [_create(people["ada"], "big.csv", content) for content in (just_over, far_over)]

    assert [answer.status_code for answer in files] == [413, 413]
    assert files[0].json()["detail"] == (
        f"The file is {MAX_FILE_BYTES + 1:,} bytes; the limit is {LIMIT} bytes (10 MB)."
    )
    sent = int(files[1].request.headers["content-length"])
    assert files[1].json()["detail"] == _over_the_body_limit(f"{sent:,}")
    assert _rows_in_tables(hub) == (0, 0, 0)


def test_only_the_owning_teams_builders_and_admins_upload_and_anyone_signed_in_reads(people, hub):
    refused = {
        "member": _create(people["bob"], "t.csv", TICKETS_CSV),
        "other team's builder for alpha": _create(people["cy"], "t.csv", TICKETS_CSV, team="alpha"),
        "signed out": _create(people["anon"], "t.csv", TICKETS_CSV),
    }
    assert {who: answer.status_code for who, answer in refused.items()} == {
        "member": 403,
        "other team's builder for alpha": 403,
        "signed out": 401,
    }
    assert _rows_in_tables(hub) == (0, 0, 0)
    assert _create(people["ada"], "t.csv", TICKETS_CSV).status_code == 201

    additions = {
        "member": _add(people["bob"], "t.csv", TICKETS_CSV),
        "other team's builder": _add(people["cy"], "t.csv", TICKETS_CSV),
        "signed out": _add(people["anon"], "t.csv", TICKETS_CSV),
        "admin": _add(people["root"], "t.csv", TICKETS_CSV),
        "team's service": _add(people["service"], "t.csv", TICKETS_CSV),
    }

    assert {who: answer.status_code for who, answer in additions.items()} == {
        "member": 403,
        "other team's builder": 403,
        "signed out": 401,
        "admin": 201,
        "team's service": 201,
    }
    assert "Only team 'alpha''s builders or an admin" in additions["other team's builder"].text
    assert people["cy"].get(SETS).json()[0]["latest_version"] == 3
    assert people["anon"].get(SETS).status_code == 401
    assert people["anon"].get(f"{SETS}/tickets/versions/1/cases").status_code == 401


def test_names_are_slugs_taken_once(people):
    first = _create(people["ada"], "t.csv", TICKETS_CSV)
    again = _create(people["cy"], "t.csv", TICKETS_CSV)
    bad = _create(people["ada"], "t.csv", TICKETS_CSV, name="Tickets Set")
    reserved = _create(people["ada"], "t.csv", TICKETS_CSV, name="new")
    no_file = people["ada"].post(SETS, data={"name": "other"})

    assert first.status_code == 201
    assert (again.status_code, again.json()["detail"]) == (
        409,
        "A test set named 'tickets' exists; pick another name.",
    )
    assert bad.status_code == 422 and "name: String should match pattern" in bad.text
    assert reserved.status_code == 422 and "taken by the hub's pages" in reserved.text
    assert no_file.status_code == 422 and "multipart field 'file'" in no_file.text


def test_the_list_is_searched_by_words_and_by_team(people):
    _create(people["ada"], "t.csv", TICKETS_CSV, description="Support tickets by queue.")
    _create(people["cy"], "t.jsonl", TICKETS_JSONL, name="refunds", description="Refund mails.")

    def names(**params: str) -> list[str]:
        return [s["name"] for s in people["bob"].get(SETS, params=params).json()]

    assert names() == ["refunds", "tickets"]
    assert names(q="queue support") == ["tickets"]
    assert names(q="REFUND") == ["refunds"]
    assert names(q="nothing") == []
    assert names(team="beta") == ["refunds"]
    assert names(q="tickets", team="beta") == []


def test_uploads_are_in_the_audit_log(people):
    _create(people["ada"], "tickets.csv", TICKETS_CSV)
    _add(people["service"], "more.jsonl", TICKETS_JSONL, note="more")

    events = _audit(people)

    assert [(e["action"], e["object_kind"], e["object_id"], e["actor_name"]) for e in events] == [
        ("eval_set.created", "eval_set", "tickets", "ada"),
        ("eval_set.version_added", "eval_set", "tickets", "alpha-bot"),
    ]
    assert [e["details"] for e in events] == [
        {"team": "alpha", "version": 1, "cases": 3, "filename": "tickets.csv"},
        {"version": 2, "cases": 3, "filename": "more.jsonl"},
    ]


def test_a_body_sent_without_its_length_is_refused_once_it_passes_the_limit(people, hub):
    boundary = "cases-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\ntickets\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\na\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(12):  # 12 MiB of rows, more than the limit
            yield b"x\r\n" * (1024 * 1024 // 3)
        yield f"\r\n--{boundary}--\r\n".encode()

    said = people["ada"].post(
        SETS,
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )

    assert said.status_code == 413
    assert said.json()["detail"] == _over_the_body_limit(f"more than {BODY_LIMIT:,}")
    assert _rows_in_tables(hub) == (0, 0, 0)
