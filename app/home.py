"""The chat's home: the models and agents a person may pick, each with its description and
conversation starters, and a plain word when there is nothing to pick.

Chainlit's home screen shows the picked profile's icon and description above the message
box and its starters below it; the menu at the top left lists every profile. A profile's
description also lists the others, so the home shows every choice without opening the menu.
Names and descriptions come from the hub (the model catalog, agents' builders), so they are
escaped before they go into markdown.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

import chainlit as cl

from agents.hub_client import AgentInfo, HubClient, HubError, ModelInfo
from app.turns import PROFILE_AGENT, PROFILE_DRAFT

__all__ = ["MODEL_STARTERS", "empty_home_notice", "home_profiles", "markdown_text"]

MODEL_ICON = "/public/favicon.svg"
AGENT_ICON = "/public/agent.svg"
# Models come with no starters of their own; these show what a general model is good for.
MODEL_STARTERS = (
    cl.Starter(
        label="Explain a concept",
        message="Explain what an API gateway does, in three short paragraphs for a newcomer.",
    ),
    cl.Starter(
        label="Draft an email",
        message="Draft a short, friendly email asking my team for their updates by Friday.",
    ),
    cl.Starter(
        label="Plan a meeting",
        message="Plan a 30-minute team retrospective: an agenda with timings.",
    ),
)
_OTHERS_SHOWN = 8
_SUMMARY_CHARS = 120
# With `:` and `@` escaped too, a bare address shows as itself (a link to where it says).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&:@])")


def markdown_text(text: str) -> str:
    """`text` as it reads, with nothing in it taken for markdown: no images, headings or links
    under another name (a bare address still shows as a link to itself)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _summary(text: str) -> str:
    line = " ".join(text.split())
    if len(line) > _SUMMARY_CHARS:
        line = line[: _SUMMARY_CHARS - 1].rstrip() + "…"
    return line


@dataclass(frozen=True, slots=True)
class _Choice:
    name: str
    label: str
    kind: str
    about: str
    description: str
    icon: str
    starters: tuple[cl.Starter, ...]


def _model_choice(model: ModelInfo) -> _Choice:
    return _Choice(
        name=model.id,
        label=model.id,
        kind="model",
        about="A model, through Switchboard's gateway.",
        description=model.description,
        icon=MODEL_ICON,
        starters=MODEL_STARTERS,
    )


def _agent_choice(agent: AgentInfo) -> _Choice:
    starters = tuple(cl.Starter(label=text, message=text) for text in agent.starters)
    if agent.is_draft:
        return _Choice(
            name=PROFILE_DRAFT + agent.slug,
            label=f"{agent.name} (draft)",
            kind="your draft",
            about="Your draft agent: try it here before you publish it in the hub.",
            description=agent.description,
            icon=AGENT_ICON,
            starters=starters,
        )
    return _Choice(
        name=PROFILE_AGENT + agent.slug,
        label=agent.name,
        kind="agent",
        about="An agent, published in Switchboard's hub.",
        description=agent.description,
        icon=AGENT_ICON,
        starters=starters,
    )


def _description(choice: _Choice, choices: Sequence[_Choice]) -> str:
    parts = [f"### {markdown_text(choice.label)}", markdown_text(choice.about)]
    if choice.description:
        parts.append(markdown_text(choice.description))
    others = [other for other in choices if other.name != choice.name]
    if others:
        lines = [
            f"- **{markdown_text(other.label)}** ({other.kind})"
            + (f": {markdown_text(_summary(other.description))}" if other.description else "")
            for other in others[:_OTHERS_SHOWN]
        ]
        if len(others) > _OTHERS_SHOWN:
            lines.append(f"- and {len(others) - _OTHERS_SHOWN} more")
        parts.append("**Also here**, in the menu at the top left:\n\n" + "\n".join(lines))
    return "\n\n".join(parts)


def home_profiles(models: Sequence[ModelInfo], agents: Sequence[AgentInfo]) -> list[cl.ChatProfile]:
    """A chat profile per model, then per agent; the first model is picked at first."""
    choices = [_model_choice(model) for model in models] + [_agent_choice(a) for a in agents]
    return [
        cl.ChatProfile(
            name=choice.name,
            display_name=choice.label if choice.label != choice.name else None,
            markdown_description=_description(choice, choices),
            icon=choice.icon,
            default=index == 0,
            starters=list(choice.starters) or None,
        )
        for index, choice in enumerate(choices)
    ]


async def empty_home_notice(hub: HubClient) -> str | None:
    """What to tell a person who has no model to pick, or None when there are models."""
    try:
        models = await hub.list_models()
    except HubError as error:
        return f"There is nothing to chat with right now. {error}"
    if models:
        return None
    return (
        "There is nothing to chat with yet: no models are configured in the hub. "
        "An admin adds them to the hub's model catalog (models.yaml)."
    )
