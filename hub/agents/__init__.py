"""The hub's agent catalog: agents people build without code, and their published versions."""
