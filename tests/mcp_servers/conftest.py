"""The BigQuery emulator with the sample marketplace, shared by the MCP servers' tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_servers.bigquery.emulator import EmulatorError, EmulatorProcess
from tests.support.servers import free_port


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """`python -m mcp_servers.bigquery.emulator` on a free port, seeded for today (UTC).

    Started once per session (a few seconds). It has `url`, `project`, `dataset`, `today`,
    `seed`, `settings` (a `WarehouseSettings` pointing at it) and `client()`, a new official
    `google.cloud.bigquery.Client` for it. Tests only read the `dataset`; a test that writes
    uses a dataset of its own and drops it.
    """
    data_dir: Path = tmp_path_factory.mktemp("bigquery")
    log_path = data_dir / "emulator.log"
    with log_path.open("wb") as log:
        emulator = EmulatorProcess(port=free_port(), data_dir=data_dir, log=log)
        try:
            emulator.start(timeout_s=90)
        except EmulatorError as exc:
            pytest.fail(f"{exc}:\n{log_path.read_text()}")
        try:
            yield emulator
        finally:
            emulator.stop()
