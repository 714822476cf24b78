"""The model catalog: public model names, where each is deployed, and what it costs."""

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from hub.gateway.media_urls import MediaUrls
from hub.gateway.provider_options import OptionRule, ProviderOption

__all__ = [
    "Deployment",
    "ModelCapabilities",
    "ModelCatalog",
    "ModelCatalogError",
    "ModelEntry",
    "load_model_catalog",
]


class ModelCatalogError(ValueError):
    pass


class Deployment(BaseModel):
    """One place a model is served: an OpenAI-compatible endpoint in one region."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["openai", "anthropic", "gemini", "vllm", "llama.cpp", "openai-compatible"]
    base_url: HttpUrl
    region: str = "default"
    model: str = Field(min_length=1, description="the model id the provider expects")
    api_key_env: str | None = Field(
        default=None, description="environment variable holding the provider key"
    )

    @cached_property
    def name(self) -> str:
        return f"{self.provider}/{self.region}/{self.model}"

    @cached_property
    def chat_url(self) -> str:
        return str(self.base_url).rstrip("/") + "/chat/completions"

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


class ModelCapabilities(BaseModel):
    """What a model can do, as its catalog entry says: the agent builder and the agent runtime
    go by it (an agent with MCP servers needs tool calling)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool_calling: bool = Field(default=True, description="calls tools (function calling)")
    image_input: bool = Field(default=False, description="takes images in messages")
    json_schema_output: bool = Field(
        default=False, description="answers in a given JSON schema (structured output)"
    )
    context_window: int | None = Field(
        default=None, gt=0, description="tokens in and out per call; null if not known"
    )


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    input_usd_per_million: float = Field(default=0.0, ge=0)
    output_usd_per_million: float = Field(default=0.0, ge=0)
    deployments: list[Deployment] = Field(min_length=1)
    fallbacks: list[str] = Field(default_factory=list)
    capabilities: ModelCapabilities = Field(default_factory=ModelCapabilities)
    # What a chat with the model asks for at most per answer (an agent sets its own); unset,
    # the model's own limit. A small model that does not stop by itself needs one.
    chat_max_tokens: int | None = Field(default=None, ge=1, le=200_000)
    # The most tokens one answer can have: a call that sets no (or a larger) max_tokens holds
    # this much output of its service's budget while it runs.
    max_output_tokens: int = Field(default=4096, ge=1, le=1_000_000)
    # The image and file URLs in messages the model's servers are given; others are refused.
    media_urls: MediaUrls = Field(default_factory=MediaUrls)
    # Per provider-side option (store, service_tier, n, audio): pass, drop or refuse (unset).
    provider_options: dict[ProviderOption, OptionRule] = Field(default_factory=dict)

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_usd_per_million + output_tokens * self.output_usd_per_million
        ) / 1_000_000


class ModelCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[ModelEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_names(self) -> "ModelCatalog":
        names = [entry.name for entry in self.models]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {', '.join(duplicates)}")
        for entry in self.models:
            unknown = [name for name in entry.fallbacks if name not in names]
            if unknown:
                raise ValueError(f"{entry.name}: unknown fallback models {unknown}")
        return self

    def get(self, name: str) -> ModelEntry | None:
        return next((entry for entry in self.models if entry.name == name), None)


def load_model_catalog(path: Path) -> ModelCatalog:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ModelCatalogError(
            f"model catalog {path} not found; set SWITCHBOARD_CATALOG_PATH"
        ) from exc
    except yaml.YAMLError as exc:
        raise ModelCatalogError(f"model catalog {path} is not valid YAML: {exc}") from exc
    try:
        return ModelCatalog.model_validate(raw)
    except ValueError as exc:
        raise ModelCatalogError(f"model catalog {path} is invalid: {exc}") from exc
