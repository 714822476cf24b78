"""The hub's settings: one typed object read from the environment and an optional `.env`."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEV_APP_TOKEN", "Settings", "get_settings"]

# Development-only token the chat app uses to call the gateway; refused outside development.
DEV_APP_TOKEN = "sb-dev-chat-app-token"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_", env_file=".env", extra="ignore", populate_by_name=True
    )

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data")
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "SWITCHBOARD_DATABASE_URL"),
        description="SQLAlchemy URL; empty means a SQLite file in data_dir.",
    )
    catalog_path: Path = Path("models.yaml")

    hub_host: str = "127.0.0.1"
    hub_port: int = 8100
    app_host: str = "127.0.0.1"
    app_port: int = 8000
    local_model_port: int = 8200

    # The chat app's own service token; the hub registers its hash on start.
    app_service_token: str = DEV_APP_TOKEN

    upstream_connect_timeout_s: float = 5.0
    upstream_read_timeout_s: float = 120.0
    # How long a resolved service token stays cached before it is checked again.
    token_cache_ttl_s: float = 30.0
    usage_flush_interval_s: float = 0.2

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> "Settings":
        if self.environment == "production" and self.app_service_token == DEV_APP_TOKEN:
            raise ValueError(
                "SWITCHBOARD_APP_SERVICE_TOKEN still has its development value; "
                "set a secret token for the chat app before running in production."
            )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'switchboard.db').resolve()}"

    @property
    def hub_url(self) -> str:
        return f"http://{self.hub_host}:{self.hub_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
