"""Generated chat history in Chainlit's tables (migration 0002): a few people's conversations
with models and the analyst agent, written in bulk in one transaction.

Each conversation has five questions and five answers; every fifth is with the analyst and
also has a query tool step whose input is the SQL it ran, stored as Chainlit stores a tool
step's arguments (indented JSON). Texts are drawn from a fixed vocabulary, none of whose words
is the start of another, so a test can plant a word of its own and know where it is.
"""

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

__all__ = [
    "ANALYST",
    "MODELS",
    "PEOPLE",
    "SERVER",
    "Conversation",
    "Message",
    "generate",
    "store",
]

PEOPLE = ("ada", "bob", "cyd", "dee")
MODELS = ("gpt-4o", "claude-sonnet", "llama-70b")
ANALYST = "analyst"
SERVER = "bigquery"
START = datetime(2026, 1, 1, tzinfo=UTC)
_VOCABULARY = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu amber bronze "
    "cobalt denim ember fern granite hazel indigo jade khaki lemon magenta navy olive pearl "
    "quartz ruby saffron teal umber violet wheat yellowish zinc budget forecast invoice margin "
    "pipeline quarter revenue churn cohort funnel ledger payroll refund renewal segment tariff "
    "vendor warehouse"
).split()


@dataclass(slots=True)
class Message:
    id: str
    type: str  # user_message, assistant_message or tool
    text: str
    created_at: str
    # A tool step's input (the SQL it ran, as Chainlit stores the arguments).
    input: str = ""
    metadata: dict[str, object] = field(default_factory=dict)
    name: str = ""


@dataclass(slots=True)
class Conversation:
    id: str
    owner: str
    title: str
    model: str
    agent: str | None
    created_at: str
    messages: list[Message]


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_VOCABULARY) for _ in range(words)).capitalize() + "."


def generate(conversations: int = 2000, seed: int = 21) -> list[Conversation]:
    rng = random.Random(seed)
    generated = []
    for number in range(conversations):
        began = START + timedelta(hours=number)
        model = MODELS[number % len(MODELS)]
        agent = ANALYST if number % 5 == 0 else None
        metadata: dict[str, object] = {"switchboard_reply": True, "model": model}
        if agent:
            metadata |= {"agent": agent, "version": 1}
        messages = []
        for turn in range(5):
            at = began + timedelta(minutes=turn * 2)
            messages.append(Message(str(uuid.uuid4()), "user_message", _sentence(rng, 12), _at(at)))
            if agent and turn == 0:
                sql = f"SELECT {rng.choice(_VOCABULARY)}, SUM(amount)\nFROM sales\nGROUP BY 1"
                messages.append(
                    Message(
                        str(uuid.uuid4()),
                        "tool",
                        '[["north", 12]]',
                        _at(at + timedelta(seconds=20)),
                        input=json.dumps({"sql": sql}, indent=4),
                        name=f"{SERVER} · query",
                    )
                )
            messages.append(
                Message(
                    str(uuid.uuid4()),
                    "assistant_message",
                    _sentence(rng, 40),
                    _at(at + timedelta(minutes=1)),
                    metadata=metadata,
                    name=model,
                )
            )
        generated.append(
            Conversation(
                id=str(uuid.uuid4()),
                owner=PEOPLE[number % len(PEOPLE)],
                title=_sentence(rng, 4),
                model=model,
                agent=agent,
                created_at=_at(began),
                messages=messages,
            )
        )
    return generated


def store(engine: Engine, conversations: list[Conversation]) -> None:
    """Write the people, conversations and steps as Chainlit would, in one transaction."""
    is_sqlite = engine.dialect.name == "sqlite"
    owners = sorted({conversation.owner for conversation in conversations})
    user_ids = {owner: f"user-{owner}" for owner in owners}
    tags = (lambda values: json.dumps(values)) if is_sqlite else (lambda values: values)
    with engine.begin() as connection:
        connection.execute(
            text(
                'INSERT INTO users (id, identifier, metadata, "createdAt") '
                "VALUES (:id, :identifier, :metadata, :created_at)"
            ),
            [
                {"id": user_ids[owner], "identifier": owner, "metadata": "{}", "created_at": None}
                for owner in owners
            ],
        )
        connection.execute(
            text(
                'INSERT INTO threads (id, "createdAt", name, "userId", "userIdentifier", tags, '
                "metadata) VALUES (:id, :created_at, :name, :user_id, :owner, :tags, :metadata)"
            ),
            [
                {
                    "id": conversation.id,
                    "created_at": conversation.created_at,
                    "name": conversation.title,
                    "user_id": user_ids[conversation.owner],
                    "owner": conversation.owner,
                    "tags": tags([conversation.model]),
                    "metadata": json.dumps({"model": conversation.model}),
                }
                for conversation in conversations
            ],
        )
        connection.execute(
            text(
                'INSERT INTO steps (id, name, type, "threadId", streaming, metadata, input, '
                'output, "createdAt", start, "end") VALUES (:id, :name, :type, :thread_id, '
                "false, :metadata, :input, :output, :created_at, :created_at, :created_at)"
            ),
            [
                {
                    "id": message.id,
                    "name": message.name or conversation.owner,
                    "type": message.type,
                    "thread_id": conversation.id,
                    "metadata": json.dumps(message.metadata),
                    "input": message.input,
                    "output": message.text,
                    "created_at": message.created_at,
                }
                for conversation in conversations
                for message in conversation.messages
            ],
        )
