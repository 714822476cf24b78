"""Each deployable owns its tables: outside the hub, no module imports the hub's tables
(`hub.models`) or its database (`hub.core.db`). The chat app, the agent runtime in it and the
MCP servers reach the hub's data through its API; what both sides share is in light modules
(`hub/api/contract.py`, `agents/spec.py`, `agents/tracing/records.py`)."""

import ast

from tests.conftest import REPO_ROOT

OUTSIDE_THE_HUB = ("app", "agents", "mcp_servers")
FORBIDDEN = ("hub.models", "hub.core.db")


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN)


def forbidden_imports(source: str, path: str) -> list[tuple[str, int, str]]:
    """(path, line, module) of every import of a forbidden module in `source`, wherever it
    stands (at the top, in a function, under `if TYPE_CHECKING:`)."""
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from hub import models` imports hub.models as much as `import hub.models` does.
            modules = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(path, node.lineno, module) for module in modules if _forbidden(module)]
    return found


def test_no_module_outside_the_hub_imports_its_tables_or_its_database() -> None:
    found = []
    for package in OUTSIDE_THE_HUB:
        for file in sorted((REPO_ROOT / package).rglob("*.py")):
            path = file.relative_to(REPO_ROOT).as_posix()
            found += forbidden_imports(file.read_text(encoding="utf-8"), path)
    refused = [f"{path}:{line} imports {module}" for path, line, module in found]
    assert refused == [], "reach the hub through its API instead:\n" + "\n".join(refused)


def test_the_rule_reports_each_way_of_importing_the_hubs_tables() -> None:
    source = "\n".join(
        [
            "from typing import TYPE_CHECKING",
            "import hub.models.trace",
            "from hub.models.share import ShareAudience",
            "from hub import models",
            "from hub.core.db import get_engine",
            "from hub.core import db, config",
            "import hub.core.config",
            "from hub.api.contract import MAX_COMMENT",
            "if TYPE_CHECKING:",
            "    from hub.models.feedback import Feedback",
            "def later() -> None:",
            "    import hub.core.db as database",
        ]
    )
    found = forbidden_imports(source, "app/example.py")
    assert [(line, module) for _, line, module in found] == [
        (2, "hub.models.trace"),
        (3, "hub.models.share.ShareAudience"),
        (4, "hub.models"),
        (5, "hub.core.db.get_engine"),
        (6, "hub.core.db"),
        (10, "hub.models.feedback.Feedback"),
        (12, "hub.core.db"),
    ]
