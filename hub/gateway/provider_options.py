"""Options that change what the provider does beyond answering (keeps the call, bills another
tier, answers several times, speaks): each catalog model says per option whether it passes
on, is dropped, or is refused with a 400 (the default). An option at its neutral value (null,
`store: false`, `n: 1`) asks for nothing and always passes unchanged."""

from collections.abc import Mapping
from typing import Any, Literal

from hub.gateway.errors import GatewayError

__all__ = ["OptionRule", "ProviderOption", "options_refusal", "without_dropped"]

ProviderOption = Literal["store", "service_tier", "n", "audio"]
OptionRule = Literal["pass", "drop", "refuse"]
_OPTIONS: tuple[ProviderOption, ...] = ("store", "service_tier", "n", "audio")
_REFUSE: OptionRule = "refuse"


def _in_use(option: ProviderOption, body: Mapping[str, Any]) -> bool:
    if option == "audio":
        # Audio out is asked for by `audio` and by "audio" in `modalities`.
        modalities = body.get("modalities")
        return body.get("audio") is not None or (
            isinstance(modalities, list) and "audio" in modalities
        )
    value = body.get(option)
    return not (value is None or value is False or (option == "n" and value == 1))


def options_refusal(
    model: str, rules: Mapping[ProviderOption, OptionRule], body: Mapping[str, Any]
) -> GatewayError | None:
    """The 400 for the first option in use in `body` that `model` refuses, or None."""
    for option in _OPTIONS:
        if option in body or option == "audio":
            if rules.get(option, _REFUSE) == _REFUSE and _in_use(option, body):
                field = option if option in body else "modalities"
                return GatewayError(
                    400,
                    f"{field!r} asks the provider for {option!r}, which the model {model!r} "
                    "does not take (its catalog entry's provider_options). Leave it out, or "
                    "ask an admin to allow it.",
                    code="option_not_allowed",
                    param=field,
                )
    return None


def without_dropped(
    rules: Mapping[ProviderOption, OptionRule], body: dict[str, Any]
) -> dict[str, Any]:
    """`body` without the options in use that `rules` drop (a copy when any is)."""
    dropped = [option for option, rule in rules.items() if rule == "drop" and _in_use(option, body)]
    if not dropped:
        return body
    body = dict(body)
    for option in dropped:
        body.pop(option, None)
        if option == "audio":
            body.pop("modalities", None)
    return body
