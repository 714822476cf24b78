"""The hub's settings: one typed object read from the environment and an optional `.env`."""

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "APP_SERVICE_NAME",
    "DEV_APP_TOKEN",
    "EVALUATION_SERVICE_NAME",
    "PLAYGROUND_SERVICE_NAME",
    "Settings",
    "get_settings",
    "require_strong_secret",
    "secret_weakness",
]

# Development-only token the chat app uses to call the gateway; refused outside development.
DEV_APP_TOKEN = "sb-dev-chat-app-token"
# The service the chat app calls the hub as; the only one trusted to act for a person.
APP_SERVICE_NAME = "chat-app"
# The service the prompt playground's runs are counted under (with the team of who ran them).
PLAYGROUND_SERVICE_NAME = "prompt-playground"
# The service evaluation runs' calls are counted under (with the team of the run's prompt).
EVALUATION_SERVICE_NAME = "evaluation"

# A production secret: at least this long, with at least this many different characters,
# and none of these well-known words in it (compared case-insensitively).
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT_CHARACTERS = 10
_PLACEHOLDER_WORDS = (
    "changeme",
    "change-me",
    "change_me",
    "replaceme",
    "replace-me",
    "secret",
    "password",
    "passwd",
    "default",
    "example",
    "placeholder",
    "qwerty",
    "letmein",
    "12345678",
    "sb-dev-",
    "sb-test-",
)
_MAKE_A_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


def secret_weakness(value: str) -> str | None:
    """Why `value` is too weak to guard a production deployment, or None when it is not."""
    if not value:
        return "is not set"
    if value == DEV_APP_TOKEN:
        return "is the development token printed in the source code"
    lowered = value.lower()
    if word := next((word for word in _PLACEHOLDER_WORDS if word in lowered), None):
        return f"contains the well-known placeholder {word!r}"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is {len(value)} characters long; it needs at least {MIN_SECRET_LENGTH}"
    if (distinct := len(set(value))) < MIN_SECRET_DISTINCT_CHARACTERS:
        return (
            f"has only {distinct} different characters; a random secret has at least "
            f"{MIN_SECRET_DISTINCT_CHARACTERS}"
        )
    return None


def require_strong_secret(variable: str, value: str) -> None:
    """Refuse a weak `value` for the environment variable `variable` (never echoing it)."""
    if reason := secret_weakness(value):
        raise ValueError(
            f"{variable} {reason}. In production it must be a long random secret of your own; "
            f"make one with: {_MAKE_A_SECRET}"
        )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        # A refused setting's error must not print the other settings' values (secrets).
        hide_input_in_errors=True,
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
    handbook_port: int = 8300
    # The local OpenID Connect provider `switchboard run` starts in development.
    local_identity_provider_port: int = 8400

    # Encrypts secrets at rest; empty means a key generated once in data_dir (not in production).
    secret_key: str = ""
    # Networks (CIDRs, comma-separated) the hub may reach MCP servers in besides public
    # addresses; empty means loopback only in development and test, nothing in production.
    # Link-local and cloud metadata addresses are refused whatever this says.
    mcp_allowed_networks: str = ""
    mcp_check_interval_s: float = 60.0
    # "Check now" on one server at most once per this many seconds (per hub replica).
    mcp_check_now_interval_s: float = Field(default=10.0, ge=0)
    mcp_connect_timeout_s: float = 5.0
    mcp_discovery_timeout_s: float = 15.0
    mcp_call_timeout_s: float = 60.0
    web_session_days: int = 7
    # Traces of a deleted conversation are kept this many days for audit (admins only), then
    # removed; 0 removes them with the conversation.
    deleted_conversation_trace_days: int = Field(default=30, ge=0)
    trace_sweep_interval_s: float = Field(default=3600.0, gt=0)
    # Agent runs are also exported as OpenTelemetry spans (GenAI conventions) when set, e.g.
    # http://127.0.0.1:4318 for a collector, Langfuse, Phoenix or Jaeger speaking OTLP/HTTP.
    otlp_endpoint: str = ""
    # The data analyst asks a person before a query that would scan more than this many
    # bytes; per person (by sign-in name) it can be set higher or lower, as JSON:
    # SWITCHBOARD_QUERY_APPROVAL_BYTES_BY_USER='{"ana@example.com": 50000000000}'.
    query_approval_bytes: int = Field(default=1_000_000_000, ge=0)
    query_approval_bytes_by_user: dict[str, int] = Field(default_factory=dict)

    # The largest file a person can attach to a chat message (bytes); larger ones are refused.
    chat_attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)

    # Company sign-in (OpenID Connect). An empty issuer means no single sign-on; in
    # development `switchboard run` then starts the local provider and points the hub at it.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_scopes: str = "openid profile email"
    # What the sign-in button says, e.g. "Okta" or "Microsoft".
    oidc_provider_label: str = "your company account"
    # The ID token claim that lists the person's groups, and what groups mean here: a group
    # named <prefix><team> makes them a member of that team; the role groups make them an
    # admin or a builder (comma-separated names). Read at every sign-in.
    oidc_groups_claim: str = "groups"
    oidc_team_group_prefix: str = "team-"
    oidc_admin_groups: str = "switchboard-admins"
    oidc_builder_groups: str = "switchboard-builders"
    # Clock difference allowed when checking an ID token's times.
    oidc_leeway_s: int = Field(default=60, ge=0, le=600)
    # Local passwords (`switchboard user create`); unset means on in development, off in
    # production.
    password_sign_in: bool | None = None
    # Where people reach the hub and the chat (behind a proxy, their public URLs); empty means
    # http://host:port of each. The hub's sign-in returns people to the chat's URL.
    public_hub_url: str = ""
    public_app_url: str = ""
    # The domain of the session cookie that the hub and the chat share, e.g. `.corp.example`
    # when they are on sibling hosts; empty means the host that set it (fine on one host).
    session_cookie_domain: str = ""

    # The chat app's own service token; the hub registers its hash on start.
    app_service_token: str = DEV_APP_TOKEN

    # Shared state of hub replicas (breakers, limit counters); empty keeps it in memory.
    redis_url: str = Field(
        default="", validation_alias=AliasChoices("REDIS_URL", "SWITCHBOARD_REDIS_URL")
    )
    # Starts every key the hub writes in Redis, so several platforms can share one Redis.
    redis_prefix: str = "switchboard:"

    # Each upstream attempt: time to connect, to the first byte (of a stream: its first
    # event), between two reads of a stream, and for the whole request.
    upstream_connect_timeout_s: float = 5.0
    upstream_first_byte_timeout_s: float = 60.0
    upstream_read_timeout_s: float = 120.0
    upstream_total_timeout_s: float = 600.0
    # Retries: attempts per model (spread over its regions), exponential backoff with full
    # jitter (honouring Retry-After), all attempts of a request within one deadline.
    retry_attempts: int = Field(default=3, ge=1, le=20)
    retry_backoff_s: float = 0.25
    retry_backoff_max_s: float = 8.0
    request_deadline_s: float = 120.0
    # Circuit breaker per deployment: this many failures within the window open it; after
    # the cool-down one probe request goes through.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_window_s: float = 30.0
    breaker_cooldown_s: float = 30.0
    # How long a resolved service token stays cached before it is checked again.
    token_cache_ttl_s: float = 30.0
    usage_flush_interval_s: float = 0.2
    # Most usage records (and, apart, tool calls) held in memory while the database does not
    # take them; past it the oldest are dropped (hub/core/batch_writer.py).
    usage_max_pending: int = Field(default=100_000, ge=1)
    # How often each hub looks for evaluation runs to work on.
    eval_poll_interval_s: float = Field(default=1.0, gt=0)
    # Live judges: how often each hub reads which prompts' calls are sampled, and how many
    # sampled answers wait in its memory to be judged (past it they are dropped and counted).
    live_judge_refresh_s: float = Field(default=1.0, gt=0)
    live_judge_queue_size: int = Field(default=1000, ge=1)
    # On SIGTERM: how long open requests (streams) get to finish before they are cut off;
    # `switchboard run` waits that long plus a margin for each part before killing it.
    shutdown_grace_s: int = Field(default=25, ge=1, le=3600)

    # The most a request body may hold, checked before it is parsed or its sender is known
    # (hub/body_limits.py): any route, and the model calls (images travel inside them as
    # base64) and the chat app's trace batches. Test set uploads take their file's limit.
    request_body_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    model_call_body_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    # The largest file the chat imports conversations from (a ChatGPT or Claude export, or
    # its own JSON export), and the most a zip of one may unpack to.
    chat_import_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)

    # Log lines on stderr: "text", or "json" (one object a line) for a log collector.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # When set, GET /metrics (the hub's and the chat's) needs `Authorization: Bearer <it>`;
    # empty leaves it open to whoever reaches the port.
    metrics_token: str = ""

    def query_approval_bytes_for(self, user: str) -> int:
        return self.query_approval_bytes_by_user.get(user, self.query_approval_bytes)

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> "Settings":
        if self.environment != "production":
            # The development token is public, so outside production nothing listens beyond
            # this machine.
            for variable, host in (
                ("SWITCHBOARD_HUB_HOST", self.hub_host),
                ("SWITCHBOARD_APP_HOST", self.app_host),
            ):
                if not _is_loopback(host):
                    raise ValueError(
                        f"{variable} is {host!r}, but in {self.environment} the hub and the "
                        "chat listen on loopback only (127.0.0.1, ::1 or localhost): their "
                        "development token is public. Set it to 127.0.0.1, or set "
                        "SWITCHBOARD_ENVIRONMENT=production with secrets of your own."
                    )
            return self
        require_strong_secret("SWITCHBOARD_APP_SERVICE_TOKEN", self.app_service_token)
        # It encrypts MCP server secrets at rest.
        require_strong_secret("SWITCHBOARD_SECRET_KEY", self.secret_key)
        if self.metrics_token:
            require_strong_secret("SWITCHBOARD_METRICS_TOKEN", self.metrics_token)
        return self

    @property
    def allowed_mcp_networks(self) -> list[str]:
        configured = [cidr.strip() for cidr in self.mcp_allowed_networks.split(",")]
        if any(configured):
            return [cidr for cidr in configured if cidr]
        return [] if self.environment == "production" else ["127.0.0.0/8", "::1/128"]

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'switchboard.db').resolve()}"

    @property
    def hub_url(self) -> str:
        return f"http://{self.hub_host}:{self.hub_port}"

    @property
    def hub_public_url(self) -> str:
        return (self.public_hub_url or self.hub_url).rstrip("/")

    @property
    def app_public_url(self) -> str:
        return (self.public_app_url or f"http://{self.app_host}:{self.app_port}").rstrip("/")

    @property
    def passwords_allowed(self) -> bool:
        if self.password_sign_in is not None:
            return self.password_sign_in
        return self.environment != "production"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    def oidc_groups(self, setting: str) -> frozenset[str]:
        value: str = getattr(self, setting)
        return frozenset(name.strip() for name in value.split(",") if name.strip())


@lru_cache
def get_settings() -> Settings:
    return Settings()
