"""The turns of a conversation as a tree: editing a message or regenerating an answer starts a
sibling of that turn, and the earlier turns stay as a branch the person can go back to.

A turn is a person's message (its step id); its parent is the turn before it on the same
branch. The tree is kept in the conversation's metadata under `TREE_KEY`: the turns in the
order they were made, and for each turn (or the start, "") the child last chosen, which is
the branch shown everywhere the conversation opens.

Each branch has its own agent memory: the turns of the original line use the conversation's
id, and a branch started by a sibling uses `{conversation id}~{the sibling's id}` (short
enough for the hub's trace records), so what one branch said never leaks into another.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chainlit.step import StepDict
from chainlit.types import ThreadDict

__all__ = ["ROOT", "TREE_KEY", "TurnTree", "shown_branch", "turns_of"]

TREE_KEY = "turn_tree"
# The parent of a conversation's first turns.
ROOT = ""
_FORK_ID_CHARS = 16


@dataclass
class TurnTree:
    # turn -> its parent (ROOT for a first message), in the order the turns were made.
    parents: dict[str, str] = field(default_factory=dict)
    # parent (or ROOT) -> the child chosen last.
    chosen: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_metadata(cls, metadata: Any) -> "TurnTree":
        """The tree stored with a conversation; anything malformed in it is left out."""
        stored = metadata.get(TREE_KEY) if isinstance(metadata, dict) else None
        tree = cls()
        if not isinstance(stored, dict):
            return tree
        for pair in stored.get("turns") or []:
            if (
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(part, str) for part in pair)
                and pair[0]
                and pair[0] not in tree.parents
                and (pair[1] == ROOT or pair[1] in tree.parents)
            ):
                tree.parents[pair[0]] = pair[1]
        chosen = stored.get("chosen")
        if isinstance(chosen, dict):
            for parent, child in chosen.items():
                if isinstance(child, str) and tree.parents.get(child) == parent:
                    tree.chosen[parent] = child
        return tree

    def to_metadata(self) -> dict[str, Any]:
        turns = [[turn, parent] for turn, parent in self.parents.items()]
        return {"turns": turns, "chosen": dict(self.chosen)}

    def children(self, parent: str) -> list[str]:
        return [turn for turn, above in self.parents.items() if above == parent]

    def siblings(self, turn: str) -> list[str]:
        """The turns that answer to the same parent as `turn`, `turn` among them, oldest first."""
        return self.children(self.parents[turn]) if turn in self.parents else [turn]

    def follow(self, path: Sequence[str]) -> None:
        """The person is on `path` (their messages shown, oldest first, the new one last):
        record the turns not yet known, each a child of the one before it, and choose them."""
        parent = ROOT
        for turn in path:
            if turn not in self.parents:
                self.parents[turn] = parent
            parent = self.parents[turn]
            self.chosen[parent] = turn
            parent = turn

    def choose(self, turn: str) -> None:
        self.chosen[self.parents[turn]] = turn

    def path(self) -> list[str]:
        """The turns of the branch chosen, from the first one on; where no child was chosen,
        the newest."""
        path: list[str] = []
        parent = ROOT
        while children := self.children(parent):
            chosen = self.chosen.get(parent)
            parent = chosen if chosen in children else children[-1]
            path.append(parent)
        return path

    def fork_of(self, turn: str) -> str | None:
        """The turn that started the branch `turn` is on: the nearest of it and the turns
        before it that is not the first child of its parent; None on the original line."""
        node = turn
        while node in self.parents:
            parent = self.parents[node]
            if self.children(parent)[0] != node:
                return node
            node = parent
        return None

    def memory_key(self, conversation_id: str, turn: str) -> str:
        fork = self.fork_of(turn)
        if fork is None:
            return conversation_id
        return f"{conversation_id}~{fork.replace('-', '')[:_FORK_ID_CHARS]}"

    def memory_keys(self, conversation_id: str) -> set[str]:
        """Every branch's memory key, the original line's among them."""
        return {conversation_id} | {self.memory_key(conversation_id, turn) for turn in self.parents}


def turns_of(steps: Iterable[StepDict]) -> list[tuple[StepDict | None, list[StepDict]]]:
    """Steps (oldest first) grouped by turn: each person's message with what came after it
    until the next one; what came before the first message goes with None."""
    groups: list[tuple[StepDict | None, list[StepDict]]] = [(None, [])]
    for step in steps:
        if step.get("type") == "user_message":
            groups.append((step, []))
        else:
            groups[-1][1].append(step)
    return groups if groups[0][1] else groups[1:]


def shown_branch(thread: ThreadDict) -> ThreadDict:
    """The conversation as its chosen branch shows it: the turns of other branches, and what
    they said and did, left out (with their attachments). Messages the tree does not know
    (a conversation from before branches were kept) always show."""
    tree = TurnTree.from_metadata(thread.get("metadata"))
    if not tree.parents:
        return thread
    on_path = set(tree.path())
    kept: list[StepDict] = []
    for turn, steps in turns_of(thread["steps"]):
        if turn is None or turn["id"] not in tree.parents or turn["id"] in on_path:
            kept += ([turn] if turn is not None else []) + steps
    ids = {step["id"] for step in kept}
    elements = [
        element
        for element in thread.get("elements") or []
        if element.get("forId") is None or element.get("forId") in ids
    ]
    shown = thread.copy()
    shown["steps"], shown["elements"] = kept, elements
    return shown
