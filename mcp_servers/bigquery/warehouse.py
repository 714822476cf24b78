"""Where the marketplace warehouse is: the local emulator by default, real BigQuery when set.

Nothing to configure for the emulator: `python -m mcp_servers.bigquery.emulator` listens on
127.0.0.1:9050 with project `switchboard-local` and dataset `marketplace`, the defaults here.
Setting `SWITCHBOARD_BIGQUERY_PROJECT` (and leaving `SWITCHBOARD_BIGQUERY_EMULATOR` unset)
points every client at that real project, with the credentials in
`SWITCHBOARD_BIGQUERY_CREDENTIALS` (a service-account JSON file) or else Google's application
default credentials (`gcloud auth application-default login`, a workload identity, ...).
"""

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import bigquery
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_EMULATOR",
    "EMULATOR_PROJECT",
    "WarehouseSettings",
    "get_warehouse_settings",
    "make_client",
]

DEFAULT_EMULATOR = "127.0.0.1:9050"
EMULATOR_PROJECT = "switchboard-local"
DEFAULT_DATASET = "marketplace"


class WarehouseSettings(BaseSettings):
    """The warehouse a client talks to; read from `SWITCHBOARD_BIGQUERY_*` and `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_BIGQUERY_", env_file=".env", extra="ignore", populate_by_name=True
    )

    project: str | None = Field(
        default=None,
        description="A real Google Cloud project; unset means the local emulator's project.",
    )
    dataset: str = Field(default=DEFAULT_DATASET, description="The marketplace dataset.")
    emulator: str | None = Field(
        default=None,
        description="host:port (or http URL) of a BigQuery emulator; wins over a real project.",
    )
    location: str | None = Field(default=None, description="Job location, e.g. EU or US.")
    credentials: Path | None = Field(
        default=None,
        description="Service-account JSON for real BigQuery; unset means default credentials.",
    )
    allow_time_travel: bool = Field(
        default=False,
        description="Accept FOR SYSTEM_TIME AS OF, which reads rows as they were (deleted "
        "rows included).",
    )
    allow_session_user: bool = Field(
        default=False,
        description="Accept SESSION_USER(), which tells a query the account it runs as.",
    )
    data_dir: Path = Field(
        default=Path("data"),
        validation_alias="SWITCHBOARD_DATA_DIR",
        description="The platform's data folder; the emulator keeps its files in `bigquery/`.",
    )

    @property
    def uses_emulator(self) -> bool:
        """True unless a real project is set without an emulator address (empty means unset)."""
        return bool(self.emulator) or not self.project

    @property
    def project_id(self) -> str:
        return self.project or EMULATOR_PROJECT

    @property
    def emulator_url(self) -> str:
        """The emulator's base URL, e.g. `http://127.0.0.1:9050`."""
        address = (self.emulator or DEFAULT_EMULATOR).rstrip("/")
        return address if "://" in address else f"http://{address}"

    @property
    def emulator_host(self) -> str:
        return urlsplit(self.emulator_url).hostname or "127.0.0.1"

    @property
    def emulator_port(self) -> int:
        return urlsplit(self.emulator_url).port or 80

    @property
    def emulator_data_dir(self) -> Path:
        return self.data_dir / "bigquery"


@lru_cache
def get_warehouse_settings() -> WarehouseSettings:
    return WarehouseSettings()


def make_client(settings: WarehouseSettings | None = None) -> bigquery.Client:
    """An official `google.cloud.bigquery.Client` for the configured warehouse.

    For the emulator: anonymous credentials and the emulator's URL as the API endpoint. For
    real BigQuery: the service-account file when one is set, else application default
    credentials (the client finds them itself).
    """
    settings = settings or get_warehouse_settings()
    if settings.uses_emulator:
        return bigquery.Client(
            project=settings.project_id,
            credentials=AnonymousCredentials(),
            location=settings.location,
            client_options=ClientOptions(api_endpoint=settings.emulator_url),
        )
    credentials: Credentials | None = None
    if settings.credentials is not None:
        from google.oauth2 import service_account

        credentials = service_account.Credentials.from_service_account_file(
            str(settings.credentials)
        )
    return bigquery.Client(
        project=settings.project_id, credentials=credentials, location=settings.location
    )
