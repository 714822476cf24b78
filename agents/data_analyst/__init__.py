"""The data analyst, the agent the platform ships: its definition (`agent.toml`: name, MCP
servers, starters, limits) and its instructions (`instructions.md`), together here."""

import tomllib
from pathlib import Path
from typing import Any

__all__ = ["definition"]

_HERE = Path(__file__).parent


def definition() -> dict[str, Any]:
    """The agent as the hub's agent API takes it (without a model: the hub picks one)."""
    fields = tomllib.loads((_HERE / "agent.toml").read_text(encoding="utf-8"))
    return {**fields, "instructions": (_HERE / "instructions.md").read_text(encoding="utf-8")}
