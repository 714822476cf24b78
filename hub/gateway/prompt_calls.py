"""A prompt called by name: `POST /v1/prompts/{name}/completions` with its variables.

The call is checked, the version (production, or the one pinned) rendered with the variables
into a chat-completion request with the version's model and parameters, and that request goes
the way every model call goes (`Gateway.complete`: retries, fallbacks, limits, usage), so the
answer has the chat-completions shape, streamed too.
"""

import time
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from sqlalchemy import Engine
from sqlmodel import Session

from hub.gateway.chat_request import ChatRequest, bad_request, stream_choice
from hub.gateway.errors import GatewayError
from hub.models.experiment import MAX_UNIT_CHARS
from hub.models.prompt import PromptDefinition, PromptVersion
from hub.services import prompts as store

__all__ = [
    "PRODUCTION_TTL_S",
    "PromptCall",
    "PromptResolver",
    "parse_prompt_call",
    "prompt_chat_request",
    "render_request",
    "variable_values",
]

_FIELDS = frozenset({"variables", "version", "stream", "stream_options", "unit"})
MAX_VARIABLES = 100
MAX_VALUE_CHARS = 100_000
# How long a process serves the version it read before it reads again: half the second in
# which a change of production made through another process must be served.
PRODUCTION_TTL_S = 0.5
# Entries are (prompt, version) pairs that exist; past this many, start again.
MAX_ENTRIES = 10_000


@dataclass(slots=True)
class PromptCall:
    variables: dict[str, str]
    version: int | None
    stream: bool
    client_wants_usage: bool
    # The caller's unit (a user id, say) for the prompt's running experiment, if any.
    unit: str | None = None


def _as_text(name: str, value: Any) -> str:
    """A variable's value as it goes into the template: a string as it is, anything else
    (a number, true/false, a list, an object) as JSON."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) > MAX_VALUE_CHARS:
        raise bad_request(
            f"The variable {name!r} is {len(text)} characters; at most {MAX_VALUE_CHARS}.",
            f"variables.{name}",
        )
    return text


def variable_values(variables: Any) -> dict[str, str]:
    """The variables of a call as the text each puts into the template."""
    if not isinstance(variables, dict):
        raise bad_request("'variables' must be an object of names and values.", "variables")
    if len(variables) > MAX_VARIABLES:
        raise bad_request(f"At most {MAX_VARIABLES} variables.", "variables")
    return {str(name): _as_text(str(name), value) for name, value in variables.items()}


def parse_prompt_call(raw: bytes) -> PromptCall:
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object with 'variables'.")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise bad_request(
            f"Unsupported field(s): {', '.join(unknown)}. A prompt's call takes 'variables', "
            "'version', 'stream', 'stream_options' and 'unit'; its model and parameters are the "
            "version's.",
            unknown[0],
        )
    version = body.get("version")
    if version is not None and (
        not isinstance(version, int) or isinstance(version, bool) or version < 1
    ):
        raise bad_request("'version' must be a version number (1, 2, ...) or left out.", "version")
    stream, wants_usage = stream_choice(body)
    unit = body.get("unit")
    if unit is not None:
        if not isinstance(unit, str) or not 1 <= len(unit) <= MAX_UNIT_CHARS:
            raise bad_request(
                f"'unit' must be text of 1 to {MAX_UNIT_CHARS} characters (a user id, say), "
                "or left out.",
                "unit",
            )
        if version is not None:
            raise bad_request(
                "Send 'unit' or pin a 'version', not both: in an experiment the unit's arm "
                "chooses the version.",
                "unit",
            )
    return PromptCall(
        variables=variable_values(body.get("variables", {})),
        version=version,
        stream=stream,
        client_wants_usage=wants_usage,
        unit=unit,
    )


class PromptResolver:
    """The version a call by name gets, kept in this process for at most PRODUCTION_TTL_S.

    Read from the database on every call (a worker thread and a query), serving a prompt by
    name added about 3 ms at p50 to a plain model call with one client and 6 ms with 16
    (bench/prompt_serving.py on two cores; the target is under half a millisecond). Kept
    briefly, it is read about twice a second per prompt instead, under the rule that a change
    of production made through any hub process sharing the database is served by every other
    one within a second, and by the one that made it from its very next call:
    - an entry expires PRODUCTION_TTL_S after its read began, so it never shows the database
      as it was longer ago than that: a change made elsewhere is served within that time;
    - a change made through this process (`production_changed`) drops every entry, and a
      read that began before it is not kept, so the next call here reads the change.
    Only found versions are kept: a prompt or version made a moment ago is never a 404.
    Used from the event loop only (the reads run in a worker thread), so it needs no lock.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._entries: dict[tuple[str, int | None], tuple[float, PromptVersion]] = {}
        # Counts this process's changes of production, so a read that began before one is
        # not kept.
        self._changes = 0

    def production_changed(self) -> None:
        """Forget every entry: this process changed a prompt's production version."""
        self._changes += 1
        self._entries.clear()

    async def version_to_serve(self, name: str, number: int | None) -> PromptVersion:
        """`number`, or the production version when it is None; a 404 when there is none."""
        key = (name, number)
        started = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and started < entry[0]:
            return entry[1]
        changes = self._changes
        version = await anyio.to_thread.run_sync(self._read, name, number)
        if changes == self._changes:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (started + PRODUCTION_TTL_S, version)
        return version

    def _read(self, name: str, number: int | None) -> PromptVersion:
        with Session(self._engine, expire_on_commit=False) as session:
            found = store.serving_version(session=session, name=name, number=number)
        if found is None:
            raise GatewayError(
                404, f"No prompt {name!r} exists.", code="prompt_not_found", param="name"
            )
        production, version = found
        if version is None:
            which = f"version {number}" if number is not None else "production version"
            raise GatewayError(
                404,
                f"The prompt {name!r} has no {which}"
                + (f"; its production version is {production}." if production else "."),
                code="prompt_version_not_found",
                param="version",
            )
        return version


def prompt_chat_request(name: str, version: PromptVersion, call: PromptCall) -> ChatRequest:
    """The chat-completion request that serves `call` with `version` of the prompt `name`."""
    return render_request(version, call, name=name, where=f"the prompt {name!r} v{version.number}")


def render_request(
    definition: PromptDefinition, call: PromptCall, *, name: str, where: str
) -> ChatRequest:
    """The chat-completion request of `definition` (a version, or an edit not saved yet) with
    the call's variables: its messages rendered, its model and parameters. Every variable the
    messages name must be given, and no other; `where` names the prompt in those errors."""
    missing, unknown = store.missing_and_unknown(definition, call.variables)
    takes = ", ".join(store.variables_of(definition)) or "none"
    if missing:
        raise bad_request(
            f"Missing variable(s) for {where}: {', '.join(missing)}. It takes: {takes}.",
            f"variables.{missing[0]}",
        )
    if unknown:
        raise bad_request(
            f"Unknown variable(s) for {where}: {', '.join(unknown)}. It takes: {takes}.",
            f"variables.{unknown[0]}",
        )
    body: dict[str, Any] = {
        **definition.parameters,
        "model": definition.model,
        "messages": store.render_messages(definition, call.variables),
        "stream": call.stream,
    }
    if call.stream and call.client_wants_usage:
        body["stream_options"] = {"include_usage": True}
    if definition.response_format is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": definition.response_format},
        }
    return ChatRequest(
        model=definition.model,
        body=body,
        stream=call.stream,
        client_wants_usage=call.client_wants_usage,
    )
