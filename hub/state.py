"""What a running hub holds between requests: settings, database engine, gateway, registry,
sign-in."""

from dataclasses import dataclass

from sqlalchemy import Engine

from hub.core.config import Settings
from hub.core.crypto import SecretBox
from hub.core.metrics import HubMetrics
from hub.evaluation.live_scorer import LiveScorer
from hub.gateway.experiment_calls import ExperimentResolver, ShadowCalls
from hub.gateway.prompt_calls import PromptResolver
from hub.gateway.proxy import Gateway
from hub.identity.attempts import SignInAttempts
from hub.identity.oidc import OidcClient
from hub.mcp.registry import McpRegistry
from hub.services.service_accounts import TokenResolver
from hub.services.usage import UsageRecorder

__all__ = ["HubState"]


@dataclass
class HubState:
    settings: Settings
    engine: Engine
    tokens: TokenResolver
    recorder: UsageRecorder
    gateway: Gateway
    # The version a call to a prompt by name gets, kept briefly.
    prompts: PromptResolver
    registry: McpRegistry
    box: SecretBox
    # The company's identity provider; None when single sign-on is not configured.
    oidc: OidcClient | None
    sign_in_attempts: SignInAttempts
    # The service the prompt playground's runs are counted under (PLAYGROUND_SERVICE_NAME).
    playground_service_id: int
    # The service evaluation runs and judges' calibrations are counted under.
    evaluation_service_id: int
    # The running experiment of each prompt, kept briefly, and the calls recorded in them.
    experiments: ExperimentResolver
    shadow_calls: ShadowCalls
    # What GET /metrics shows.
    metrics: HubMetrics
    # Judges a sample of the calls by name of prompts bound to a live judge.
    live_scorer: LiveScorer
