"""Checking a client's chat-completion request before anything is sent upstream."""

from dataclasses import dataclass
from typing import Any

import orjson

from hub.gateway.errors import GatewayError

__all__ = [
    "ALLOWED_FIELDS",
    "ChatRequest",
    "bad_request",
    "estimated_prompt_tokens",
    "output_cap",
    "parse_chat_request",
    "stream_choice",
]

# OpenAI's chat-completion parameters. Anything else is refused, so a client can never steer
# where the gateway connects or what it sends (api_base, base_url, headers, api_key, ...).
ALLOWED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "n",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "seed",
        "reasoning_effort",
        "metadata",
        "modalities",
        "audio",
        "prediction",
        "verbosity",
        "prompt_cache_key",
        "safety_identifier",
        "functions",
        "function_call",
        "service_tier",
        "store",
    }
)
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(slots=True)
class ChatRequest:
    model: str
    body: dict[str, Any]
    stream: bool
    client_wants_usage: bool


def estimated_prompt_tokens(body: dict[str, Any]) -> int:
    """About one token per four characters of the messages' text (a string content, or the
    text of its parts): what the gateway counts when a provider reports no usage."""
    chars = 0
    for message in body.get("messages", ()):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, dict) else None
                if isinstance(text, str):
                    chars += len(text)
    return -(-chars // 4)


def output_cap(body: dict[str, Any]) -> int | None:
    """The most tokens the request lets the answer have, when it says."""
    for field in ("max_completion_tokens", "max_tokens"):
        cap = body.get(field)
        if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0:
            return cap
    return None


def bad_request(message: str, param: str | None = None) -> GatewayError:
    """A 400 in OpenAI's error shape; `param` names the field to fix."""
    return GatewayError(400, message, param=param)


def stream_choice(body: dict[str, Any]) -> tuple[bool, bool]:
    """Whether a request's body asks to stream, and to get the usage in the stream."""
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false.", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object.", "stream_options")
    return stream, bool(stream and options and options.get("include_usage"))


def parse_chat_request(raw: bytes) -> ChatRequest:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object with 'model' and 'messages'.")
    unknown = sorted(set(body) - ALLOWED_FIELDS)
    if unknown:
        raise bad_request(
            f"Unsupported field(s): {', '.join(unknown)}. The gateway accepts only OpenAI "
            "chat-completion parameters; where a request goes is set by the model catalog.",
            param=unknown[0],
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request(
            "'model' is required and must be a model name from GET /v1/models.", "model"
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request(
            "'messages' is required and must be a non-empty list of messages.", "messages"
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise bad_request(
                f"messages[{i}] must be an object with a 'role' of {', '.join(sorted(_ROLES))}.",
                f"messages[{i}]",
            )
    stream, wants_usage = stream_choice(body)
    return ChatRequest(model=model, body=body, stream=stream, client_wants_usage=wants_usage)
