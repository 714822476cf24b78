"""Reading a tool's JSON Schema as a table a person can scan: one row per parameter."""

from dataclasses import dataclass
from typing import Any

__all__ = ["SchemaRow", "schema_rows"]


@dataclass(frozen=True, slots=True)
class SchemaRow:
    name: str
    type: str
    required: bool
    description: str


def _type_of(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "one of " + ", ".join(repr(v) for v in prop["enum"])
    if "anyOf" in prop or "oneOf" in prop:
        options = [_type_of(option) for option in prop.get("anyOf") or prop.get("oneOf") or []]
        return " or ".join(dict.fromkeys(options))
    kind = prop.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array":
        items = prop.get("items")
        return f"list of {_type_of(items)}" if isinstance(items, dict) else "list"
    if kind == "object" and isinstance(prop.get("properties"), dict):
        return "object with " + ", ".join(prop["properties"])
    if "default" in prop:
        return f"{kind} (default {prop['default']!r})"
    return str(kind)


def schema_rows(schema: dict[str, Any] | None) -> list[SchemaRow]:
    properties = (schema or {}).get("properties") or {}
    required = set((schema or {}).get("required") or [])
    return [
        SchemaRow(
            name=name,
            type=_type_of(prop) if isinstance(prop, dict) else "any",
            required=name in required,
            description=str(prop.get("description") or prop.get("title") or "")
            if isinstance(prop, dict)
            else "",
        )
        for name, prop in properties.items()
    ]
