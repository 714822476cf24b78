"""Prompts in the database: versions numbered under a lock, production changes kept as
releases and recorded in the audit log, and a version rendered with its variables.

Anyone signed in reads every prompt; its team's builders and admins change it (`can_manage`).
"""

import difflib
import re
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session, col, func, or_, select

from hub.models.actor import Actor
from hub.models.prompt import (
    PLACEHOLDER,
    Prompt,
    PromptCreate,
    PromptDefinition,
    PromptListItem,
    PromptPublic,
    PromptRelease,
    PromptVersion,
    PromptVersionPublic,
    placeholders,
)
from hub.models.usage import UsageRecord
from hub.services.audit import record_event

__all__ = [
    "add_version",
    "create_prompt",
    "diff_lines",
    "get_prompt",
    "get_version",
    "list_items",
    "list_versions",
    "missing_and_unknown",
    "render_messages",
    "rollback_target",
    "serving_version",
    "set_production",
    "to_public",
    "variables_of",
    "version_public",
    "was_production",
]


def get_prompt(*, session: Session, name: str) -> Prompt | None:
    return session.exec(select(Prompt).where(Prompt.name == name)).first()


def get_version(*, session: Session, prompt: Prompt, number: int) -> PromptVersion | None:
    query = select(PromptVersion).where(
        PromptVersion.prompt_id == prompt.id, PromptVersion.number == number
    )
    return session.exec(query).first()


def list_versions(*, session: Session, prompt: Prompt) -> list[PromptVersion]:
    query = (
        select(PromptVersion)
        .where(PromptVersion.prompt_id == prompt.id)
        .order_by(col(PromptVersion.number).desc())
    )
    return list(session.exec(query).all())


def serving_version(
    *, session: Session, name: str, number: int | None
) -> tuple[int | None, PromptVersion | None] | None:
    """The prompt's production version number and the version a call gets (`number`, or
    production when it is None), in one query; None when there is no such prompt."""
    wanted = Prompt.production_version if number is None else number
    query = (
        select(Prompt.production_version, PromptVersion)
        .outerjoin(
            PromptVersion,
            (col(PromptVersion.prompt_id) == Prompt.id) & (col(PromptVersion.number) == wanted),
        )
        .where(Prompt.name == name)
    )
    found = session.exec(query).first()
    return None if found is None else (found[0], found[1])


def _record(
    session: Session, actor: Actor, action: str, prompt: Prompt, details: dict[str, Any]
) -> None:
    record_event(
        session=session,
        actor=actor,
        action=action,
        object_kind="prompt",
        object_id=prompt.name,
        details=details,
    )


def _definition(definition: PromptDefinition) -> dict[str, Any]:
    return PromptDefinition.model_validate(definition, from_attributes=True).model_dump()


def create_prompt(*, session: Session, prompt_in: PromptCreate, team: str, actor: Actor) -> Prompt:
    """The prompt with its first version, which is production."""
    prompt = Prompt(
        name=prompt_in.name,
        team=team,
        description=prompt_in.description,
        production_version=1,
        created_by=actor.name,
    )
    session.add(prompt)
    session.flush()
    assert prompt.id is not None
    session.add(
        PromptVersion(
            **_definition(prompt_in), prompt_id=prompt.id, number=1, created_by=actor.name
        )
    )
    session.add(PromptRelease(prompt_id=prompt.id, version=1, made_by=actor.name))
    _record(session, actor, "prompt.created", prompt, {"team": team, "version": 1})
    session.commit()
    session.refresh(prompt)
    return prompt


def add_version(
    *, session: Session, prompt: Prompt, definition: PromptDefinition, actor: Actor
) -> PromptVersion:
    """Freeze `definition` as the next version (production does not move)."""
    # Lock the prompt's row (PostgreSQL) so two new versions cannot take the same number.
    locked = session.exec(select(Prompt).where(Prompt.id == prompt.id).with_for_update()).one()
    last = session.exec(
        select(func.max(PromptVersion.number)).where(PromptVersion.prompt_id == locked.id)
    ).one()
    assert locked.id is not None
    version = PromptVersion(
        **_definition(definition),
        prompt_id=locked.id,
        number=(last or 0) + 1,
        created_by=actor.name,
    )
    session.add(version)
    _record(session, actor, "prompt.version_added", locked, {"version": version.number})
    session.commit()
    session.refresh(version)
    return version


def _last_release(session: Session, prompt: Prompt) -> PromptRelease | None:
    query = (
        select(PromptRelease)
        .where(PromptRelease.prompt_id == prompt.id)
        .order_by(col(PromptRelease.id).desc())
    )
    return session.exec(query).first()


def rollback_target(*, session: Session, prompt: Prompt) -> int | None:
    """The version that was production before the current one, if any."""
    last = _last_release(session, prompt)
    return last.previous if last is not None else None


def was_production(*, session: Session, prompt: Prompt, number: int) -> bool:
    """Whether version `number` has been production at some time."""
    query = select(PromptRelease.id).where(
        PromptRelease.prompt_id == prompt.id, PromptRelease.version == number
    )
    return session.exec(query).first() is not None


def set_production(
    *,
    session: Session,
    prompt: Prompt,
    version: int,
    actor: Actor,
    rollback: bool = False,
    gate_check: int | None = None,
) -> Prompt:
    """Make `version` production (a roll back when `rollback`), kept as a release and in the
    audit log with the version it replaced (and the gate check that let it through, if any)."""
    locked = session.exec(select(Prompt).where(Prompt.id == prompt.id).with_for_update()).one()
    assert locked.id is not None
    before = locked.production_version
    previous = before
    if rollback:
        # Back to `version` as it was then: what it replaced is production's predecessor now.
        earlier = session.exec(
            select(PromptRelease)
            .where(PromptRelease.prompt_id == locked.id, PromptRelease.version == version)
            .order_by(col(PromptRelease.id).desc())
        ).first()
        previous = earlier.previous if earlier is not None else None
    locked.production_version = version
    session.add(locked)
    session.add(
        PromptRelease(
            prompt_id=locked.id,
            version=version,
            previous=previous,
            rollback=rollback,
            made_by=actor.name,
        )
    )
    details: dict[str, Any] = {"from_version": before, "to_version": version, "rollback": rollback}
    if gate_check is not None:
        details["gate_check"] = gate_check
    _record(session, actor, "prompt.production_changed", locked, details)
    session.commit()
    session.refresh(locked)
    return locked


def variables_of(version: PromptDefinition) -> list[str]:
    """Every variable the version's messages name, each once, in order of first use."""
    names: dict[str, None] = {}
    for message in version.messages:
        names.update(dict.fromkeys(placeholders(message["content"])))
    return list(names)


def missing_and_unknown(
    version: PromptDefinition, variables: dict[str, Any]
) -> tuple[list[str], list[str]]:
    expected = variables_of(version)
    missing = [name for name in expected if name not in variables]
    unknown = [name for name in variables if name not in expected]
    return missing, unknown


def render_messages(version: PromptDefinition, variables: dict[str, str]) -> list[dict[str, Any]]:
    """The version's messages with each `{{name}}` replaced by its value, in one pass (a value
    that itself contains `{{...}}` is left as it is). Every variable must be given."""

    def value(found: re.Match[str]) -> str:
        return variables[found.group(1)]

    return [
        {"role": message["role"], "content": PLACEHOLDER.sub(value, message["content"])}
        for message in version.messages
    ]


def _as_text(version: PromptDefinition) -> list[str]:
    """A version written out line by line, for a diff."""
    lines = [f"model: {version.model}"]
    lines += [f"parameters.{key}: {value}" for key, value in sorted(version.parameters.items())]
    if version.response_format is not None:
        schema = orjson.dumps(version.response_format, option=orjson.OPT_INDENT_2).decode()
        lines += ["response_format:", *(f"  {line}" for line in schema.splitlines())]
    lines.append(f"note: {version.note}")
    for i, message in enumerate(version.messages):
        lines.append(f"messages[{i}] ({message['role']}):")
        lines += [f"  {line}" for line in message["content"].splitlines()]
    return lines


def diff_lines(old: PromptVersion, new: PromptVersion) -> list[str]:
    return list(
        difflib.unified_diff(
            _as_text(old), _as_text(new), f"v{old.number}", f"v{new.number}", lineterm=""
        )
    )


def version_public(version: PromptVersion, production: int | None) -> PromptVersionPublic:
    return PromptVersionPublic.model_validate(
        {**version.model_dump(), "is_production": version.number == production}
    )


def to_public(*, session: Session, prompt: Prompt) -> PromptPublic:
    production = (
        get_version(session=session, prompt=prompt, number=prompt.production_version)
        if prompt.production_version is not None
        else None
    )
    return PromptPublic(
        **prompt.model_dump(
            include={"name", "team", "description", "production_version", "created_at"}
        ),
        created_by=prompt.created_by,
        variables=variables_of(production) if production else [],
        production=version_public(production, prompt.production_version) if production else None,
    )


def list_items(
    *, session: Session, text: str | None, team: str | None, since: datetime
) -> list[PromptListItem]:
    """Every prompt, searched by each word of `text` in its name and description, with the
    calls made by its name since `since` (every version) and their cost."""
    counts = (
        select(PromptVersion.prompt_id, func.count().label("versions"))
        .group_by(col(PromptVersion.prompt_id))
        .subquery()
    )
    usage = (
        select(
            col(UsageRecord.prompt).label("prompt"),
            func.count().label("calls"),
            func.sum(UsageRecord.cost_usd).label("cost_usd"),
        )
        .where(col(UsageRecord.prompt).is_not(None), col(UsageRecord.created_at) >= since)
        .group_by(col(UsageRecord.prompt))
        .subquery()
    )
    query = (
        sa.select(
            col(Prompt.name),
            col(Prompt.team),
            col(Prompt.description),
            col(Prompt.production_version),
            col(PromptVersion.model),
            counts.c.versions,
            col(Prompt.created_at),
            func.coalesce(usage.c.calls, 0).label("calls_7d"),
            func.coalesce(usage.c.cost_usd, 0.0).label("cost_7d_usd"),
        )
        .join(counts, counts.c.prompt_id == Prompt.id)
        .outerjoin(usage, usage.c.prompt == Prompt.name)
        .outerjoin(
            PromptVersion,
            (col(PromptVersion.prompt_id) == Prompt.id)
            & (col(PromptVersion.number) == Prompt.production_version),
        )
        .order_by(col(Prompt.name))
    )
    if team:
        query = query.where(col(Prompt.team) == team)
    for word in (text or "").lower().split():
        query = query.where(
            or_(
                func.lower(Prompt.name).contains(word, autoescape=True),
                func.lower(Prompt.description).contains(word, autoescape=True),
            )
        )
    # SQLModel's select() and exec() are typed for at most four columns; this takes more.
    return [
        PromptListItem.model_validate({**row._mapping, "cost_7d_usd": round(row.cost_7d_usd, 8)})
        for row in session.connection().execute(query).all()
    ]
