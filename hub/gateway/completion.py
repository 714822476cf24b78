"""A non-streamed answer of the gateway read back inside the hub (tool rounds, evaluation
runs and judges, experiments): the completion as JSON, its tokens, and its cost at the
catalog's prices of the model that answered."""

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from hub.gateway.errors import GatewayError
from hub.gateway.model_catalog import ModelCatalog
from hub.gateway.proxy import MODEL_HEADER

__all__ = ["Completion", "read_completion"]


@dataclass(frozen=True, slots=True)
class Completion:
    body: dict[str, Any]
    input_tokens: int
    output_tokens: int
    cost_usd: float

    @property
    def message(self) -> dict[str, Any]:
        """The first choice's message ({} when there is none)."""
        choices = self.body.get("choices") or [{}]
        message = choices[0].get("message") if isinstance(choices[0], dict) else None
        return message if isinstance(message, dict) else {}

    @property
    def text(self) -> str:
        content = self.message.get("content")
        return content if isinstance(content, str) else ""


def read_completion(response: Response, catalog: ModelCatalog, asked: str) -> Completion:
    """`response`'s completion; `asked` is the model requested, priced when the answer does
    not name the one that answered. An answer that is not a JSON object is a 502."""
    try:
        body = orjson.loads(bytes(response.body))
    except orjson.JSONDecodeError as exc:
        raise GatewayError(502, "The model's answer was not JSON.", type="upstream_error") from exc
    if not isinstance(body, dict):
        raise GatewayError(502, "The model's answer was not JSON.", type="upstream_error")
    usage = body.get("usage") or {}
    tokens_in = int(usage.get("prompt_tokens") or 0)
    tokens_out = int(usage.get("completion_tokens") or 0)
    entry = catalog.get(response.headers.get(MODEL_HEADER) or asked)
    cost = entry.cost_usd(tokens_in, tokens_out) if entry else 0.0
    return Completion(body, tokens_in, tokens_out, cost)
