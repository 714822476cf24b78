"""Who may call what: every route of the hub, tried by six callers over real HTTP.

`ACCESS` is the whole answer, one row per request: the status each caller gets. The callers
are an admin, a builder and a member of team alpha, a builder of team beta, team alpha's
service token (a builder of alpha that is not an admin), and someone signed out (`anon`).
People call with the session cookie (and the hub's own `Origin`, as its pages send); the
service with its bearer token. Team alpha registered the MCP server `weather`. Alpha's builder
owns three agents: `guide` (published for everyone), `team-guide` (published for team alpha)
and `draft-guide` (never published); alpha's member ran `guide` (trace `run-1`) in their
conversation `t-bob`, whose answer `m-bob` they gave a thumbs down. Alpha's builder made the
prompt `greeting`, uploaded team alpha's test set `greetings` (two names) and ran `greeting` over
it twice (`{run}` and `{other_run}`); both runs finished before the table is tried. `greeting`'s
regression gate is bound to `greetings`, and refused its v3 (gate check `{gate_check}`). Alpha's
builder's agent `gated-guide` (published for everyone) is gated on team alpha's test set
`questions`, and its gate refused its v2 (gate check `{agent_gate_check}`).

A route missing from the table fails `test_every_route_of_the_hub_is_in_the_access_table`, so a
new route comes with its row.
"""

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import iter_route_contexts
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, select

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.identity.cookies import SESSION_COOKIE
from hub.main import HOT_ROUTES, create_app
from hub.models.eval_gate import EvalGate, EvalGateCheck
from hub.models.experiment import Experiment
from hub.models.feedback import Feedback
from hub.models.service import utcnow
from hub.models.share import Share
from hub.models.trace import TraceRun
from hub.services.users import create_user, get_user
from hub.services.web_sessions import list_web_sessions, start_web_session
from tests.conftest import RunningHub
from tests.support.mcp_server import McpTestServer
from tests.support.upstream import ScriptedUpstream


class Row(NamedTuple):
    method: str
    path: str
    admin: int
    builder: int
    member: int
    beta: int
    service: int
    anon: int


CALLERS = ("admin", "builder", "member", "beta", "service", "anon")
# The chat's messages (Chainlit's table): JSON metadata, JSONB on PostgreSQL.
_STEPS = sa.table(
    "steps",
    *(sa.column(name, sa.Text) for name in ("id", "name", "type", "threadId")),
    sa.column("streaming", sa.Boolean),
    sa.column("metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)
TOOL_CALL = "/api/mcp/servers/weather/tools/get_weather/call"
MODEL_CHAT_SPEC = "/api/model-chat/run-spec?model=test-model&server=weather"
PROMPT_DIFF = "/api/prompts/greeting/diff?from=1&to=1"
GREETING = [{"role": "user", "content": "Say hello to {{name}}."}]
GREETINGS_CSV = b"name\nAda\nGrace\n"
RUN_BODY = {"set": "greetings", "prompt": "greeting", "version": 1}
SET_VERSIONS = "/api/evaluation/sets/greetings/versions"
SET_CASES = "/api/evaluation/sets/greetings/versions/1/cases"
RUNS_COMPARED = "/api/evaluation/runs/{run}/compare/{other_run}"
RUNS_COMPARED_PAGE = "/evaluation/runs/{run}/compare/{other_run}"
JUDGE = "/api/evaluation/judges/greeting-judge"
JUDGE_PAGE = "/evaluation/judges/greeting-judge"
EXPERIMENT_BODY = {"prompt": "greeting", "version_a": 1, "version_b": 2}
GATE = "/api/prompts/greeting/gate"
GATE_BODY = {"set": "greetings", "checks": [{"kind": "contains", "value": "Hello"}]}
GATE_CHECK = "/api/prompts/greeting/gate-checks/{gate_check}"
GATE_CHECK_PAGE = "/prompts/greeting/gate-checks/{gate_check}"
AGENT_GATE = "/api/agents/gated-guide/gate"
AGENT_GATE_BODY = {"set": "questions", "checks": [{"kind": "contains", "value": "Hello"}]}
AGENT_GATE_CHECK = "/api/agents/gated-guide/gate-checks/{agent_gate_check}"
AGENT_GATE_CHECK_PAGE = "/agents/gated-guide/gate-checks/{agent_gate_check}"
QUESTIONS_CSV = b"message\nHi\nHello?\n"
LIVE_JUDGE = "/api/prompts/greeting/live-judge"
LIVE_JUDGE_PAGE = "/prompts/greeting/live-judge"
LIVE_JUDGE_BODY = {"judge": "greeting-judge", "share": 0.5}

# `{victim}` is the id of another person's session, there to be ended; `{run}` and `{other_run}`
# are the two finished runs of `greeting` over `greetings`.
# The approve rows answer 409 to whoever passed the role and team checks: nothing waits there
# for approval. Signed out, the API answers 401 and the pages send to /login (303).
# fmt: off
_TABLE: list[tuple[str, str, int, int, int, int, int, int]] = [
    # method   path                                    admin   builder member  beta    service anon
    ("GET",    "/healthz",                             200,    200,    200,    200,    200,    200),
    # Open to whoever reaches the hub, unless SWITCHBOARD_METRICS_TOKEN is set.
    ("GET",    "/metrics",                             200,    200,    200,    200,    200,    200),
    ("GET",    "/openapi.json",                        200,    200,    200,    200,    200,    200),
    ("GET",    "/docs",                                200,    200,    200,    200,    200,    200),
    ("GET",    "/docs/oauth2-redirect",                200,    200,    200,    200,    200,    200),
    ("GET",    "/redoc",                               200,    200,    200,    200,    200,    200),
    # The gateway, for services.
    ("GET",    "/v1/models",                           401,    401,    401,    401,    200,    401),
    ("POST",   "/v1/chat/completions",                 401,    401,    401,    401,    200,    401),
    ("GET",    "/v1/usage",                            401,    401,    401,    401,    403,    401),
    ("GET",    "/api/gateway/breakers",                200,    403,    403,    403,    403,    401),
    # Sign-in API: the chat app's questions (only its service may ask), who am I, admins'
    # sessions.
    ("GET",    "/api/auth/session",                    403,    403,    403,    403,    403,    401),
    ("POST",   "/api/auth/session/end",                403,    403,    403,    403,    403,    401),
    ("GET",    "/api/auth/me",                         200,    200,    200,    200,    200,    401),
    ("GET",    "/api/auth/sessions",                   200,    403,    403,    403,    403,    401),
    ("DELETE", "/api/auth/sessions/{victim}",          204,    403,    403,    403,    403,    401),
    # The audit log: admins read it; nothing changes it.
    ("GET",    "/api/audit",                           200,    403,    403,    403,    403,    401),
    # MCP servers: everyone reads and calls tools; team alpha's builders and admins change.
    ("POST",   "/api/mcp/servers",                     201,    201,    403,    403,    201,    401),
    ("GET",    "/api/mcp/servers",                     200,    200,    200,    200,    200,    401),
    ("GET",    "/api/mcp/servers/weather",             200,    200,    200,    200,    200,    401),
    ("PATCH",  "/api/mcp/servers/weather",             200,    200,    403,    403,    200,    401),
    ("POST",   "/api/mcp/servers/weather/disable",     200,    200,    403,    403,    200,    401),
    ("POST",   "/api/mcp/servers/weather/enable",      200,    200,    403,    403,    200,    401),
    ("POST",   "/api/mcp/servers/weather/approve",     409,    409,    403,    403,    409,    401),
    ("POST",   "/api/mcp/servers/weather/check",       200,    200,    403,    403,    200,    401),
    ("DELETE", "/api/mcp/servers/weather",             204,    204,    403,    403,    204,    401),
    ("GET",    "/api/mcp/servers/weather/snapshots",   200,    200,    200,    200,    200,    401),
    ("GET",    "/api/mcp/servers/weather/stats",       200,    200,    200,    200,    200,    401),
    ("POST",   TOOL_CALL,                              200,    200,    200,    200,    200,    401),
    # Agents: builders make their own; only the owner and admins change one.
    ("POST",   "/api/agents",                          201,    201,    403,    201,    201,    401),
    ("GET",    "/api/agents",                          200,    200,    200,    200,    200,    401),
    ("GET",    "/api/agents/guide",                    200,    200,    200,    200,    200,    401),
    ("PATCH",  "/api/agents/guide",                    200,    200,    403,    403,    403,    401),
    ("DELETE", "/api/agents/guide",                    204,    204,    403,    403,    403,    401),
    ("POST",   "/api/agents/guide/publish",            201,    201,    403,    403,    403,    401),
    ("GET",    "/api/agents/guide/versions",           200,    200,    200,    200,    200,    401),
    ("POST",   "/api/agents/guide/versions/1/restore", 200,    200,    403,    403,    403,    401),
    ("GET",    "/api/agents/guide/live",               200,    200,    200,    200,    200,    401),
    ("GET",    "/api/agents/guide/draft-run-spec",     200,    200,    403,    403,    403,    401),
    ("GET",    "/api/agents/team-guide",               200,    200,    200,    404,    200,    401),
    ("GET",    "/api/agents/team-guide/live",          200,    200,    200,    404,    200,    401),
    ("GET",    "/api/agents/draft-guide",              200,    200,    404,    404,    404,    401),
    # `gated-guide`'s regression gate: whoever may read the agent reads it and its gate checks;
    # its owner and admins bind and remove it (overriding is at the end of the table).
    ("GET",    AGENT_GATE,                             200,    200,    200,    200,    200,    401),
    ("PUT",    AGENT_GATE,                             200,    200,    403,    403,    403,    401),
    ("DELETE", AGENT_GATE,                             204,    204,    403,    403,    403,    401),
    ("GET",    "/api/agents/gated-guide/gate-checks",  200,    200,    200,    200,    200,    401),
    ("GET",    AGENT_GATE_CHECK,                       200,    200,    200,    200,    200,    401),
    # Prompts (`greeting` is team alpha's): anyone reads; builders make them for their own
    # team; alpha's builders and admins add versions and ship. Rolling back answers 409 to
    # whoever passed those checks: production never moved, so there is nothing before it.
    ("POST",   "/api/prompts",                         201,    201,    403,    201,    201,    401),
    ("GET",    "/api/prompts",                         200,    200,    200,    200,    200,    401),
    ("GET",    "/api/prompts/greeting",                200,    200,    200,    200,    200,    401),
    ("POST",   "/api/prompts/greeting/versions",       201,    201,    403,    403,    201,    401),
    ("GET",    "/api/prompts/greeting/versions",       200,    200,    200,    200,    200,    401),
    ("GET",    "/api/prompts/greeting/versions/1",     200,    200,    200,    200,    200,    401),
    ("POST",   "/api/prompts/greeting/production",     200,    200,    403,    403,    200,    401),
    ("POST",   "/api/prompts/greeting/rollback",       409,    409,    403,    403,    409,    401),
    ("GET",    PROMPT_DIFF,                            200,    200,    200,    200,    200,    401),
    # `greeting`'s regression gate: anyone reads it and its gate checks; alpha's builders and
    # admins bind and remove it (overriding a gate check is at the end of the table).
    ("GET",    GATE,                                   200,    200,    200,    200,    200,    401),
    ("PUT",    GATE,                                   200,    200,    403,    403,    200,    401),
    ("DELETE", GATE,                                   204,    204,    403,    403,    204,    401),
    ("GET",    "/api/prompts/greeting/gate-checks",    200,    200,    200,    200,    200,    401),
    ("GET",    GATE_CHECK,                             200,    200,    200,    200,    200,    401),
    # `greeting`'s live judge: anyone reads its live scores; alpha's builders and admins bind
    # and remove it. Binding answers 422 to whoever passed that check (`greeting-judge` is not
    # calibrated), and removing 404 (no live judge is bound).
    ("GET",    LIVE_JUDGE,                             200,    200,    200,    200,    200,    401),
    ("PUT",    LIVE_JUDGE,                             422,    422,    403,    403,    422,    401),
    ("DELETE", LIVE_JUDGE,                             404,    404,    403,    403,    404,    401),
    # A prompt served by name, for services.
    ("POST",   "/v1/prompts/greeting/completions",     401,    401,    401,    401,    200,    401),
    # The playground: any builder tries a prompt, saved or not.
    ("POST",   "/api/playground",                      200,    200,    403,    200,    200,    401),
    # A chat with a model: anyone who chats gets its run spec, for themselves.
    ("GET",    MODEL_CHAT_SPEC,                        200,    200,    200,    200,    200,    401),
    # Traces: the runner, the agent's owner, admins.
    ("GET",    "/api/traces",                          200,    200,    200,    200,    200,    401),
    ("GET",    "/api/traces/run-1",                    200,    200,    200,    404,    404,    401),
    # The agent runtime sends them with the chat app's token; nobody else may.
    ("POST",   "/api/traces/batch",                    403,    403,    403,    403,    403,    401),
    ("DELETE", "/api/traces?conversation=t-bob",       403,    403,    403,    403,    403,    401),
    # Share links: `{share}` is the member's link for team alpha; a person shares only their
    # own conversation (`t-bob` is the member's); services neither share nor read links.
    ("POST",   "/api/shares",                          404,    404,    201,    404,    403,    401),
    ("GET",    "/api/shares",                          200,    200,    200,    200,    200,    401),
    ("GET",    "/api/shares/{share}",                  200,    200,    200,    404,    404,    401),
    ("DELETE", "/api/shares/{share}",                  204,    404,    204,    404,    404,    401),
    # Searching what is shared with one: people only.
    ("GET",    "/api/shares/search?q=pricing",         200,    200,    200,    200,    403,    401),
    # Test sets (`greetings` is team alpha's): anyone signed in reads; builders make them for
    # their own teams (these rows ask for team alpha); alpha's builders and admins add versions.
    ("POST",   "/api/evaluation/sets",                 201,    201,    403,    403,    201,    401),
    ("GET",    "/api/evaluation/sets",                 200,    200,    200,    200,    200,    401),
    ("GET",    "/api/evaluation/sets/greetings",       200,    200,    200,    200,    200,    401),
    ("POST",   SET_VERSIONS,                           201,    201,    403,    403,    201,    401),
    ("GET",    SET_CASES,                              200,    200,    200,    200,    200,    401),
    # Evaluation runs of `greeting` (team alpha's) over `greetings`: anyone signed in reads;
    # alpha's builders and admins estimate, start and cancel. `{run}` has finished, so
    # cancelling it changes nothing and answers the run.
    ("POST",   "/api/evaluation/runs/estimate",        200,    200,    403,    403,    200,    401),
    ("POST",   "/api/evaluation/runs",                 201,    201,    403,    403,    201,    401),
    ("GET",    "/api/evaluation/runs",                 200,    200,    200,    200,    200,    401),
    ("GET",    "/api/evaluation/runs/{run}",           200,    200,    200,    200,    200,    401),
    ("GET",    "/api/evaluation/runs/{run}/results",   200,    200,    200,    200,    200,    401),
    ("POST",   "/api/evaluation/runs/{run}/cancel",    200,    200,    403,    403,    200,    401),
    ("GET",    RUNS_COMPARED,                          200,    200,    200,    200,    200,    401),
    # Feedback: a person rates answers in their own conversation and takes back their own
    # (`m-bob` is the member's); the agent's owner and admins read it; admins export it.
    ("PUT",    "/api/feedback",                        404,    404,    200,    404,    403,    401),
    ("DELETE", "/api/feedback/m-bob",                  404,    404,    204,    404,    403,    401),
    ("GET",    "/api/agents/guide/feedback",           200,    200,    403,    403,    403,    401),
    ("GET",    "/api/agents/draft-guide/feedback",     200,    200,    404,    404,    404,    401),
    # Judges and labels: run 1 is alpha's run of `greeting`, whose case 1 alpha's service
    # labelled; `greeting-judge` is alpha's judge prompt. The run's team's builders and admins
    # label; the judge's team's builders and admins calibrate it and set its threshold.
    ("GET",    "/api/evaluation/runs/1/labels",        200,    200,    200,    200,    200,    401),
    ("PUT",    "/api/evaluation/runs/1/labels/1",      200,    200,    403,    403,    200,    401),
    ("DELETE", "/api/evaluation/runs/1/labels/1",      204,    204,    403,    403,    204,    401),
    ("POST",   JUDGE + "/calibrations",                201,    201,    403,    403,    201,    401),
    ("GET",    JUDGE,                                  200,    200,    200,    200,    200,    401),
    ("PUT",    JUDGE + "/threshold",                   200,    200,    403,    403,    200,    401),
    ("GET",    "/evaluation/runs/1/label",             200,    200,    200,    200,    200,    303),
    ("POST",   "/evaluation/runs/1/label",             303,    303,    403,    403,    303,    303),
    ("GET",    JUDGE_PAGE,                             200,    200,    200,    200,    200,    303),
    ("POST",   JUDGE_PAGE + "/calibrations",           303,    303,    403,    403,    303,    303),
    ("POST",   JUDGE_PAGE + "/threshold",              303,    303,    403,    403,    303,    303),
    # Experiments. Experiment 1 runs `greeting` v1 against v2 (team alpha's): anyone signed in
    # reads; alpha's builders and services and admins start, stop and report outcomes. Starting
    # answers 409 to whoever passed those checks: experiment 1 already runs on `greeting`.
    ("POST",   "/api/experiments",                     409,    409,    403,    403,    409,    401),
    ("GET",    "/api/experiments",                     200,    200,    200,    200,    200,    401),
    ("GET",    "/api/experiments/1",                   200,    200,    200,    200,    200,    401),
    ("GET",    "/api/experiments/1/calls",             200,    200,    200,    200,    200,    401),
    ("POST",   "/api/experiments/1/outcomes",          200,    200,    403,    403,    200,    401),
    ("POST",   "/api/experiments/1/stop",              200,    200,    403,    403,    200,    401),
    ("GET",    "/experiments",                         200,    200,    200,    200,    200,    303),
    ("GET",    "/experiments/new",                     200,    200,    200,    200,    200,    303),
    ("POST",   "/experiments/new",                     409,    409,    403,    403,    409,    303),
    ("GET",    "/experiments/1",                       200,    200,    200,    200,    200,    303),
    ("POST",   "/experiments/1/stop",                  303,    303,    403,    403,    303,    303),
    # Signing in and out (single sign-on is not set up in this hub).
    ("GET",    "/login",                               200,    200,    200,    200,    200,    200),
    ("POST",   "/login",                               303,    303,    303,    303,    303,    303),
    ("GET",    "/auth/oidc/start",                     404,    404,    404,    404,    404,    404),
    ("GET",    "/auth/oidc/callback",                  400,    400,    400,    400,    400,    400),
    ("POST",   "/logout",                              303,    303,    303,    303,    303,    303),
    # Pages.
    ("GET",    "/",                                    303,    303,    303,    303,    303,    303),
    ("GET",    "/servers",                             200,    200,    200,    200,    200,    303),
    ("GET",    "/servers/new",                         200,    200,    200,    200,    200,    303),
    ("POST",   "/servers/new",                         303,    303,    403,    403,    303,    303),
    ("GET",    "/servers/weather",                     200,    200,    200,    200,    200,    303),
    ("POST",   "/servers/weather/disable",             303,    303,    403,    403,    303,    303),
    ("POST",   "/servers/weather/enable",              303,    303,    403,    403,    303,    303),
    ("POST",   "/servers/weather/approve",             409,    409,    403,    403,    409,    303),
    ("POST",   "/servers/weather/check",               303,    303,    403,    403,    303,    303),
    ("GET",    "/agents",                              200,    200,    200,    200,    200,    303),
    ("GET",    "/agents/new",                          200,    200,    200,    200,    200,    303),
    ("POST",   "/agents/new",                          303,    303,    403,    303,    303,    303),
    ("GET",    "/agents/guide",                        200,    200,    200,    200,    200,    303),
    ("GET",    "/agents/team-guide",                   200,    200,    200,    404,    200,    303),
    ("GET",    "/agents/draft-guide",                  200,    200,    404,    404,    404,    303),
    ("GET",    "/agents/guide/edit",                   200,    200,    403,    403,    403,    303),
    ("POST",   "/agents/guide/edit",                   303,    303,    403,    403,    403,    303),
    ("POST",   "/agents/guide/versions/1/restore",     303,    303,    403,    403,    403,    303),
    ("POST",   "/agents/guide/publish",                303,    303,    403,    403,    403,    303),
    ("POST",   "/agents/guide/delete",                 303,    303,    403,    403,    403,    303),
    ("POST",   "/agents/gated-guide/gate",             303,    303,    403,    403,    403,    303),
    ("POST",   "/agents/gated-guide/gate/remove",      303,    303,    403,    403,    403,    303),
    ("GET",    AGENT_GATE_CHECK_PAGE,                  200,    200,    200,    200,    200,    303),
    ("GET",    "/prompts",                             200,    200,    200,    200,    200,    303),
    ("GET",    "/prompts/new",                         200,    200,    200,    200,    200,    303),
    ("POST",   "/prompts/new",                         303,    303,    403,    303,    303,    303),
    ("GET",    "/prompts/greeting",                    200,    200,    200,    200,    200,    303),
    ("GET",    "/prompts/greeting/edit",               200,    200,    200,    200,    200,    303),
    ("POST",   "/prompts/greeting/edit",               303,    303,    403,    403,    303,    303),
    ("POST",   "/prompts/greeting/production",         303,    303,    403,    403,    303,    303),
    ("POST",   "/prompts/greeting/rollback",           409,    409,    403,    403,    409,    303),
    ("GET",    "/prompts/greeting/diff",               200,    200,    200,    200,    200,    303),
    ("POST",   "/prompts/greeting/gate",               303,    303,    403,    403,    303,    303),
    ("POST",   "/prompts/greeting/gate/remove",        303,    303,    403,    403,    303,    303),
    ("GET",    LIVE_JUDGE_PAGE,                        200,    200,    200,    200,    200,    303),
    ("POST",   LIVE_JUDGE_PAGE,                        422,    422,    403,    403,    422,    303),
    ("POST",   LIVE_JUDGE_PAGE + "/delete",            404,    404,    403,    403,    404,    303),
    ("GET",    GATE_CHECK_PAGE,                        200,    200,    200,    200,    200,    303),
    ("GET",    "/traces",                              200,    200,    200,    200,    200,    303),
    ("GET",    "/traces/run-1",                        200,    200,    200,    404,    404,    303),
    ("GET",    "/gateway",                             200,    403,    403,    403,    403,    303),
    ("GET",    "/costs",                               200,    403,    403,    403,    403,    303),
    ("GET",    "/costs.csv",                           200,    403,    403,    403,    403,    303),
    ("GET",    "/feedback.csv",                        200,    403,    403,    403,    403,    303),
    ("GET",    "/sessions",                            200,    403,    403,    403,    403,    303),
    ("POST",   "/sessions/{victim}/revoke",            303,    403,    403,    403,    403,    303),
    ("GET",    "/audit",                               200,    403,    403,    403,    403,    303),
    ("GET",    "/s/{share}",                           200,    200,    200,    404,    404,    303),
    ("GET",    "/shares",                              200,    200,    200,    200,    200,    303),
    ("POST",   "/shares/{share}/revoke",               303,    404,    303,    404,    404,    303),
    # Evaluation pages: the API's rules; a refused upload or run form is shown again (403).
    ("GET",    "/evaluation",                          200,    200,    200,    200,    200,    303),
    ("GET",    "/evaluation/sets/new",                 200,    200,    200,    200,    200,    303),
    ("POST",   "/evaluation/sets/new",                 303,    303,    403,    403,    303,    303),
    ("GET",    "/evaluation/sets/greetings",           200,    200,    200,    200,    200,    303),
    ("POST",   "/evaluation/sets/greetings/versions",  303,    303,    403,    403,    303,    303),
    ("GET",    "/evaluation/runs",                     200,    200,    200,    200,    200,    303),
    ("GET",    "/evaluation/runs/new",                 200,    200,    200,    200,    200,    303),
    ("POST",   "/evaluation/runs/new",                 303,    303,    403,    403,    303,    303),
    ("GET",    "/evaluation/runs/{run}",               200,    200,    200,    200,    200,    303),
    ("POST",   "/evaluation/runs/{run}/cancel",        303,    303,    403,    403,    303,    303),
    ("GET",    RUNS_COMPARED_PAGE,                     200,    200,    200,    200,    200,    303),
    ("GET",    "/static/plotly.min.js",                200,    200,    200,    200,    200,    200),
    # Only admins override a refused gate check. Last in the table: the override makes
    # `greeting` v3 production, and `gated-guide` v2 live (the check is set back to refused
    # after each try).
    ("POST",   GATE_CHECK + "/override",               200,    403,    403,    403,    403,    401),
    ("POST",   GATE_CHECK_PAGE + "/override",          303,    403,    403,    403,    403,    303),
    ("POST",   AGENT_GATE_CHECK + "/override",         200,    403,    403,    403,    403,    401),
    ("POST",   AGENT_GATE_CHECK_PAGE + "/override",    303,    403,    403,    403,    403,    303),
]
# fmt: on
ACCESS = [Row(*line) for line in _TABLE]

PEOPLE = {
    "admin": ("root", "ops", Role.admin),
    "builder": ("ada", "alpha", Role.builder),
    "member": ("bob", "alpha", Role.member),
    "beta": ("cy", "beta", Role.builder),
}
VICTIM = "vic"
PASSWORD = "pw-access-long"


def _agent_form(slug: str) -> dict[str, str]:
    return {
        "name": "Made here",
        "slug": slug,
        "visibility": "everyone",
        "instructions": "Say hello.",
        "model": "test-model",
        "max_steps": "4",
        "max_tokens": "200",
        "timeout_s": "60",
        "action": "save",
    }


def _share_body() -> dict[str, Any]:
    steps = [{"kind": "user", "author": "bob", "text": "Where do we meet?"}]
    return {"thread_id": "t-bob", "audience": "team", "snapshot": {"steps": steps}}


def _feedback_body() -> dict[str, Any]:
    return {
        "conversation_id": "t-bob",
        "message_id": "m-bob",
        "value": -1,
        "comment": "It forgot the umbrella.",
        "model": "test-model",
        "agent_slug": "guide",
        "agent_version": 1,
        "trace_id": "run-1",
    }


def _prompt_form(**fields: str) -> dict[str, str]:
    """The prompt editor's form with `greeting`'s one message."""
    return {"role": "user", "content": GREETING[0]["content"], "model": "test-model", **fields}


def _upload(**fields: str) -> dict[str, Any]:
    """A multipart form with `greetings`' cases as its file."""
    return {"data": fields, "files": {"file": ("greetings.csv", GREETINGS_CSV, "text/csv")}}


def _what_to_send(row: Row, caller: str, mcp_url: str) -> dict[str, Any]:
    """The body (and headers) of each request that needs one; things made are named after
    their caller, so one caller's creation does not collide with the next one's."""
    sent: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/v1/chat/completions"): {
            "json": {"model": "test-model", "messages": [{"role": "user", "content": "Hi"}]}
        },
        ("GET", "/api/auth/session"): {"headers": {"x-switchboard-session": "sb-unknown"}},
        ("POST", "/api/auth/session/end"): {"headers": {"x-switchboard-session": "sb-unknown"}},
        ("POST", "/api/mcp/servers"): {
            "json": {"slug": f"api-{caller}", "name": "Weather", "team": "alpha", "url": mcp_url}
        },
        ("PATCH", "/api/mcp/servers/weather"): {"json": {"description": "Office weather."}},
        ("POST", TOOL_CALL): {"json": {"arguments": {"city": "Oslo"}}},
        ("POST", "/api/agents"): {
            "json": {"slug": f"api-{caller}", "name": "Made here", "model": "test-model"}
        },
        ("PATCH", "/api/agents/guide"): {"json": {"description": "What to wear."}},
        ("POST", "/api/prompts"): {
            "json": {"name": f"api-{caller}", "messages": GREETING, "model": "test-model"}
        },
        ("POST", "/api/prompts/greeting/versions"): {
            "json": {"messages": GREETING, "model": "test-model", "note": caller}
        },
        ("POST", "/api/prompts/greeting/production"): {"json": {"version": 1}},
        ("POST", "/v1/prompts/greeting/completions"): {"json": {"variables": {"name": "Ada"}}},
        ("POST", "/api/playground"): {
            "json": {"messages": GREETING, "model": "test-model", "variables": {"name": "Ada"}}
        },
        ("POST", "/prompts/new"): {"data": _prompt_form(name=f"page-{caller}")},
        ("POST", "/prompts/greeting/edit"): {"data": _prompt_form()},
        ("POST", "/prompts/greeting/production"): {"data": {"version": "1"}},
        ("POST", "/login"): {"data": {"username": "bob", "password": PASSWORD}},
        ("POST", "/servers/new"): {
            "data": {"slug": f"page-{caller}", "name": "Weather", "team": "alpha", "url": mcp_url}
        },
        ("POST", "/agents/new"): {"data": _agent_form(f"page-{caller}")},
        ("POST", "/agents/guide/edit"): {"data": _agent_form("guide")},
        ("POST", "/api/shares"): {"json": _share_body()},
        ("PUT", "/api/feedback"): {"json": _feedback_body()},
        ("POST", "/api/evaluation/sets"): _upload(name=f"api-{caller}", team="alpha"),
        ("POST", SET_VERSIONS): _upload(note=caller),
        ("POST", "/api/evaluation/runs/estimate"): {"json": RUN_BODY},
        ("POST", "/api/experiments"): {"json": EXPERIMENT_BODY},
        ("POST", "/api/experiments/1/outcomes"): {"json": {"unit": "user-1", "value": 1}},
        ("POST", "/experiments/new"): {"data": {**EXPERIMENT_BODY, "split": "0.5", "budget": "9"}},
        ("POST", "/api/evaluation/runs"): {"json": RUN_BODY},
        ("POST", "/evaluation/sets/new"): _upload(name=f"page-{caller}", team="alpha"),
        ("POST", "/evaluation/sets/greetings/versions"): _upload(note=caller),
        ("POST", "/evaluation/runs/new"): {"data": {**RUN_BODY, "version": "1", "action": "start"}},
        ("PUT", "/api/evaluation/runs/1/labels/1"): {"json": {"passed": True, "note": caller}},
        ("POST", JUDGE + "/calibrations"): {"json": {"run": 1}},
        ("PUT", JUDGE + "/threshold"): {"json": {"kappa": 0.5}},
        ("POST", "/evaluation/runs/1/label"): {"data": {"case_id": "1", "verdict": "fail"}},
        ("POST", JUDGE_PAGE + "/calibrations"): {"data": {"run": "1"}},
        ("POST", JUDGE_PAGE + "/threshold"): {"data": {"kappa": "0.5"}},
        ("PUT", GATE): {"json": GATE_BODY},
        ("PUT", LIVE_JUDGE): {"json": LIVE_JUDGE_BODY},
        ("POST", LIVE_JUDGE_PAGE): {"data": {**LIVE_JUDGE_BODY, "share": "0.5"}},
        ("POST", "/prompts/greeting/gate"): {
            "data": {"set": "greetings", "other_checks": json.dumps(GATE_BODY["checks"])}
        },
        ("POST", GATE_CHECK + "/override"): {"json": {"reason": f"{caller} says so"}},
        ("POST", GATE_CHECK_PAGE + "/override"): {"data": {"reason": f"{caller} says so"}},
        ("PUT", AGENT_GATE): {"json": AGENT_GATE_BODY},
        ("POST", "/agents/gated-guide/gate"): {
            "data": {"set": "questions", "other_checks": json.dumps(AGENT_GATE_BODY["checks"])}
        },
        ("POST", AGENT_GATE_CHECK + "/override"): {"json": {"reason": f"{caller} says so"}},
        ("POST", AGENT_GATE_CHECK_PAGE + "/override"): {"data": {"reason": f"{caller} says so"}},
    }
    return sent.get((row.method, row.path), {})


@dataclass
class World:
    """The hub with team alpha's server, agents and trace, and a session to end."""

    hub: RunningHub
    http: httpx.Client
    weather: McpTestServer
    service_token: str
    share_id: str = ""
    run_id: int = 0
    other_run_id: int = 0
    # Run 1 is made (after the first restore, which labels its case 1).
    has_run: bool = False
    # `greeting`'s refused gate check, once made.
    gate_check_id: int = 0
    # `gated-guide`'s refused gate check, once made.
    agent_gate_check_id: int = 0

    def session(self) -> Session:
        return Session(get_engine(self.hub.settings.sqlalchemy_url))

    def cookie(self, username: str) -> str:
        with self.session() as session:
            user = get_user(session=session, username=username)
            assert user is not None
            return start_web_session(session=session, user=user, days=1, method="password")

    def send(self, method: str, path: str, caller: str, **sent: Any) -> httpx.Response:
        """A request with the caller's credentials only (a new sign-in for a person, so one
        that signed out on the last row is signed in again), never a cookie the last answer
        set."""
        if caller == "service":
            headers = {"Authorization": f"Bearer {self.service_token}"}
        else:
            headers = {"Origin": self.hub.url}
        if caller in PEOPLE:
            headers["Cookie"] = f"{SESSION_COOKIE}={self.cookie(PEOPLE[caller][0])}"
        self.http.cookies.clear()
        return self.http.request(
            method, path, headers={**headers, **sent.pop("headers", {})}, **sent
        )

    def victim_session(self) -> int:
        with self.session() as session:
            found = [s.id for s in list_web_sessions(session=session) if s.username == VICTIM]
        if found:
            return found[0]
        self.cookie(VICTIM)
        return self.victim_session()

    def make_agent(self, slug: str, visibility: str, publish: bool) -> None:
        body = {"slug": slug, "name": slug, "model": "test-model", "visibility": visibility}
        created = self.send("POST", "/api/agents", "builder", json=body)
        assert created.status_code == 201, created.text
        if publish:
            published = self.send("POST", f"/api/agents/{slug}/publish", "builder")
            assert published.status_code == 201, published.text

    def start_run(self) -> int:
        started = self.send("POST", "/api/evaluation/runs", "builder", json=RUN_BODY)
        assert started.status_code == 201, started.text
        return int(started.json()["id"])

    def wait_for_runs(self, timeout_s: float = 30) -> None:
        """Until no evaluation run has cases to send or in flight."""
        deadline = time.monotonic() + timeout_s
        while True:
            runs = self.send("GET", "/api/evaluation/runs", "service").json()
            going = [
                run["id"]
                for run in runs
                if run["status"] in ("queued", "running") or run["progress"]["in_flight"]
            ]
            if not going:
                return
            assert time.monotonic() < deadline, f"the runs {going} did not end"
            time.sleep(0.05)

    def restore(self) -> None:
        """Put back what a request may have changed: `weather` registered and active, `guide`
        published, the share link active, the member's feedback given, experiment 1 running;
        and let the runs a request started end."""
        server = self.send("GET", "/api/mcp/servers/weather", "service")
        if server.status_code == 404:
            body = {"slug": "weather", "name": "Weather", "team": "alpha", "url": self.weather.url}
            registered = self.send("POST", "/api/mcp/servers", "service", json=body)
            assert registered.status_code == 201, registered.text
        elif server.json()["status"] != "active":
            enabled = self.send("POST", "/api/mcp/servers/weather/enable", "service")
            assert enabled.status_code == 200, enabled.text
        if self.send("GET", "/api/agents/guide", "builder").status_code == 404:
            self.make_agent("guide", "everyone", publish=True)
        with self.session() as session:
            share = session.get(Share, self.share_id)
            if share is not None and share.revoked_at is not None:
                share.revoked_at = None
                session.add(share)
                session.commit()
            rated = session.exec(select(Feedback).where(Feedback.message_id == "m-bob")).first()
            experiment = session.get(Experiment, 1)
            if experiment is not None and experiment.status != "running":
                experiment.status = "running"
                session.add(experiment)
                session.commit()
        if rated is None:
            given = self.send("PUT", "/api/feedback", "member", json=_feedback_body())
            assert given.status_code == 200, given.text
        self.wait_for_runs()
        if self.gate_check_id:
            self.restore_gate()
        if self.agent_gate_check_id:
            self.restore_agent_gate()
        if self.has_run:
            label = {"passed": True, "note": "kept"}
            put = self.send("PUT", "/api/evaluation/runs/1/labels/1", "service", json=label)
            assert put.status_code == 200, put.text

    def restore_gate(self) -> None:
        """`greeting`'s gate bound, and its gate check refused."""
        with self.session() as session:
            gate = session.exec(select(EvalGate).where(EvalGate.target == "greeting")).first()
            check = session.get(EvalGateCheck, self.gate_check_id)
            if check is not None and check.status != "refused":
                check.status = "refused"
                session.add(check)
                session.commit()
        if gate is None:
            bound = self.send("PUT", GATE, "builder", json=GATE_BODY)
            assert bound.status_code == 200, bound.text

    def restore_agent_gate(self) -> None:
        """`gated-guide`'s gate bound, and its gate check refused."""
        with self.session() as session:
            gate = session.exec(select(EvalGate).where(EvalGate.target == "gated-guide")).first()
            check = session.get(EvalGateCheck, self.agent_gate_check_id)
            if check is not None and check.status != "refused":
                check.status = "refused"
                session.add(check)
                session.commit()
        if gate is None:
            bound = self.send("PUT", AGENT_GATE, "builder", json=AGENT_GATE_BODY)
            assert bound.status_code == 200, bound.text

    def call(self, row: Row, caller: str) -> httpx.Response:
        path = row.path.format(
            victim=self.victim_session(),
            share=self.share_id,
            run=self.run_id,
            other_run=self.other_run_id,
            gate_check=self.gate_check_id,
            agent_gate_check=self.agent_gate_check_id,
        )
        return self.send(row.method, path, caller, **_what_to_send(row, caller, self.weather.url))


def _conversation(world: World, username: str, thread_id: str) -> None:
    """A conversation of `username` in the chat's tables, with an answer of `guide` (run
    `run-1`) as the chat stores it."""
    with world.session() as session:
        user = get_user(session=session, username=username)
        assert user is not None
        session.connection().execute(
            text(
                'INSERT INTO users (id, identifier, metadata, "createdAt") '
                "VALUES (:id, :key, '{}', '2026-12-01')"
            ),
            {"id": f"chat-{username}", "key": user.key},
        )
        session.connection().execute(
            text('INSERT INTO threads (id, "userId", "userIdentifier") VALUES (:id, :u, :key)'),
            {"id": thread_id, "u": f"chat-{username}", "key": user.key},
        )
        answer = {"switchboard_reply": True, "agent": "guide", "version": 1, "trace": "run-1"}
        session.connection().execute(
            sa.insert(_STEPS).values(
                id=f"m-{username}",
                name="guide",
                type="assistant_message",
                threadId=thread_id,
                streaming=False,
                metadata={**answer, "model": "test-model"},
            )
        )
        session.commit()


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    """The runner looks for runs every 50 ms, so waiting for them keeps the table quick."""
    return hub_settings.model_copy(update={"eval_poll_interval_s": 0.05})


@pytest.fixture
def world(hub: RunningHub, upstream: ScriptedUpstream) -> Iterator[World]:
    token = hub.new_service("alpha-bot", team="alpha")
    with httpx.Client(base_url=hub.url, timeout=30) as http, McpTestServer() as weather:
        world = World(hub=hub, http=http, weather=weather, service_token=token)
        with world.session() as session:
            keys = {
                username: create_user(
                    session=session, username=username, password=PASSWORD, team=team, role=role
                ).key
                for username, team, role in [*PEOPLE.values(), (VICTIM, "alpha", Role.member)]
            }
            start = utcnow()
            session.add(
                TraceRun(
                    id="run-1",
                    agent_slug="guide",
                    agent_version=1,
                    agent_owner="ada",
                    agent_owner_kind="user",
                    agent_owner_id=keys["ada"],
                    user="bob",
                    user_kind="user",
                    user_id=keys["bob"],
                    started_at=start,
                    ended_at=start + timedelta(milliseconds=50),
                    status="ok",
                )
            )
            session.commit()
        _conversation(world, "bob", "t-bob")
        shared = world.send("POST", "/api/shares", "member", json=_share_body())
        assert shared.status_code == 201, shared.text
        world.share_id = shared.json()["id"]
        world.restore()
        world.make_agent("team-guide", "team", publish=True)
        world.make_agent("draft-guide", "everyone", publish=False)
        greeting = {"name": "greeting", "messages": GREETING, "model": "test-model"}
        made = world.send("POST", "/api/prompts", "builder", json=greeting)
        assert made.status_code == 201, made.text
        uploaded = world.send(
            "POST", "/api/evaluation/sets", "builder", **_upload(name="greetings", team="alpha")
        )
        assert uploaded.status_code == 201, uploaded.text
        world.run_id = world.start_run()
        world.other_run_id = world.start_run()
        world.wait_for_runs()
        assert world.run_id == 1, "the judges' rows name run 1"
        _judge_prompt(world)
        second = {"messages": GREETING, "model": "test-model", "note": "for experiment 1"}
        added = world.send("POST", "/api/prompts/greeting/versions", "builder", json=second)
        assert added.status_code == 201, added.text
        started = world.send("POST", "/api/experiments", "builder", json=EXPERIMENT_BODY)
        assert started.status_code == 201 and started.json()["id"] == 1, started.text
        _refused_gate_check(world, upstream)
        _refused_agent_gate_check(world, upstream)
        yield world


def _refused_gate_check(world: World, upstream: ScriptedUpstream) -> None:
    """`greeting` bound to `greetings` with a `contains "Hello"` check, and its v3 (which
    says goodbye) refused by it."""
    goodbye = [{"role": "user", "content": "Say goodbye to {{name}}."}]
    third = {"messages": goodbye, "model": "test-model", "note": "for the gate"}
    added = world.send("POST", "/api/prompts/greeting/versions", "builder", json=third)
    assert added.status_code == 201 and added.json()["number"] == 3, added.text
    bound = world.send("PUT", GATE, "builder", json=GATE_BODY)
    assert bound.status_code == 200, bound.text
    upstream.reply_for = lambda r: "Bye" if "goodbye" in r["messages"][-1]["content"] else "Hello"
    asked = world.send("POST", "/api/prompts/greeting/production", "builder", json={"version": 3})
    assert asked.status_code == 202, asked.text
    world.gate_check_id = asked.json()["id"]
    deadline = time.monotonic() + 30
    path = GATE_CHECK.format(gate_check=world.gate_check_id)
    while (check := world.send("GET", path, "builder").json())["status"] == "running":
        assert time.monotonic() < deadline, f"the gate check was not decided: {check}"
        time.sleep(0.05)
    assert check["status"] == "refused", check
    upstream.reply_for = None


def _refused_agent_gate_check(world: World, upstream: ScriptedUpstream) -> None:
    """`gated-guide` (v1 says hello) bound to `questions` with a `contains "Hello"` check, and
    its draft published as v2 (which says goodbye) refused by it."""
    world.make_agent("gated-guide", "everyone", publish=True)
    upload = {"name": "questions", "team": "alpha"}
    questions = ("questions.csv", QUESTIONS_CSV, "text/csv")
    uploaded = world.send(
        "POST", "/api/evaluation/sets", "builder", data=upload, files={"file": questions}
    )
    assert uploaded.status_code == 201, uploaded.text
    bound = world.send("PUT", AGENT_GATE, "builder", json=AGENT_GATE_BODY)
    assert bound.status_code == 200, bound.text
    goodbye = {"instructions": "Say goodbye."}
    changed = world.send("PATCH", "/api/agents/gated-guide", "builder", json=goodbye)
    assert changed.status_code == 200, changed.text
    upstream.reply_for = lambda r: "Bye" if "goodbye" in json.dumps(r["messages"]) else "Hello"
    asked = world.send("POST", "/api/agents/gated-guide/publish", "builder")
    assert asked.status_code == 202, asked.text
    world.agent_gate_check_id = asked.json()["id"]
    deadline = time.monotonic() + 30
    path = AGENT_GATE_CHECK.format(agent_gate_check=world.agent_gate_check_id)
    while (check := world.send("GET", path, "builder").json())["status"] == "running":
        assert time.monotonic() < deadline, f"the gate check was not decided: {check}"
        time.sleep(0.05)
    assert check["status"] == "refused", check
    upstream.reply_for = None


def _judge_prompt(world: World) -> None:
    """`greeting-judge`, alpha's judge prompt; case 1 of run 1 labelled from now on."""
    judge = [{"role": "user", "content": "Grade {{answer}}"}]
    body = {"name": "greeting-judge", "messages": judge, "model": "test-model"}
    made = world.send("POST", "/api/prompts", "builder", json=body)
    assert made.status_code == 201, made.text
    world.has_run = True
    world.restore()


class HubRoute(NamedTuple):
    method: str
    path: str
    pattern: re.Pattern[str]


def _routes(settings: Settings) -> list[HubRoute]:
    """Every route of the hub (one per method) in the order they are tried: the hot routes,
    then the app's own."""
    app = create_app(settings)
    return [
        HubRoute(method, route.path, route.path_regex)
        for route in [*HOT_ROUTES, *iter_route_contexts(app.routes)]
        for method in sorted(set(route.methods or ()) - {"HEAD"})
    ]


def _route_of(row: Row, routes: list[HubRoute]) -> HubRoute | None:
    """The route that answers the row's request: the first whose method and path match."""
    path = row.path.format(
        victim=1, share="a-link", run=1, other_run=2, gate_check=1, agent_gate_check=2
    )
    path = path.partition("?")[0]
    found = (r for r in routes if r.method == row.method and r.pattern.match(path))
    return next(found, None)


def test_every_route_of_the_hub_is_in_the_access_table(hub_settings: Settings) -> None:
    routes = _routes(hub_settings)
    answered = {row: _route_of(row, routes) for row in ACCESS}
    assert [row for row, route in answered.items() if route is None] == []
    missing = [f"{r.method} {r.path}" for r in routes if r not in answered.values()]
    assert missing == [], f"add a row to ACCESS for each of {missing}"


# Every route for every caller: about a minute on an idle machine, several on a loaded one.
@pytest.mark.timeout(600)
def test_each_caller_gets_what_the_access_table_says_on_every_route(world: World) -> None:
    wrong = []
    for row in ACCESS:
        for caller in CALLERS:
            response = world.call(row, caller)
            expected = getattr(row, caller)
            if response.status_code != expected:
                wrong.append(
                    f"{row.method} {row.path} as {caller}: {response.status_code}, "
                    f"expected {expected}: {response.text[:200]}"
                )
            elif response.status_code == 403 and not row.path.startswith(("/api/", "/v1/")):
                # A refused page says why in words, not in the API's JSON.
                if "json" in response.headers.get("content-type", ""):
                    wrong.append(f"{row.method} {row.path} as {caller}: JSON on a page")
            if row.method != "GET":
                world.restore()
    assert wrong == [], "\n".join(wrong)
