"""The hub's Prometheus metrics, served at `GET /metrics` (README: Metrics and logs).

Counters and histograms are updated as requests are answered; every label takes values from a
small set (route templates, catalog models, services, status codes), never from raw paths or
request bodies. What is a state rather than an event (circuit breakers, rows waiting in the
batch writers, MCP servers' health) is read when the metrics are scraped (`LiveFigures`).
Each app has a registry of its own, so hubs started side by side in one process (tests) each
count their own.
"""

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.process_collector import ProcessCollector

from hub.core.batch_writer import WriterFigures

__all__ = [
    "BREAKER_STATES",
    "METRICS_CONTENT_TYPE",
    "BreakerFigure",
    "GatewayMetrics",
    "HttpMetrics",
    "HubMetrics",
    "LiveFigures",
    "metrics_token_refusal",
]

METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
BREAKER_STATES = ("closed", "half_open", "open")
# Seconds. A page or an API call takes milliseconds; a model's answer up to minutes.
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_MODEL_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)


class HttpMetrics:
    """Every HTTP request the hub answers, by method, route template and status class."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "switchboard_http_requests",
            "HTTP requests answered, by route template and status class (2xx, 4xx...).",
            ["method", "route", "status"],
            registry=registry,
        )
        self._duration = Histogram(
            "switchboard_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response (a stream's end).",
            ["method", "route"],
            buckets=_HTTP_BUCKETS,
            registry=registry,
        )
        # Each label set's series, looked up once (`labels()` costs a few µs a call).
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status // 100)
        series = self._series.get(key)
        if series is None:
            requests = self._requests.labels(method, route, f"{key[2]}xx")
            series = self._series[key] = (requests, self._duration.labels(method, route))
        series[0].inc()
        series[1].observe(seconds)


class GatewayMetrics:
    """Every model call through the gateway: its outcome, time, tokens and cost. Tokens and
    cost go to the model that answered (a fallback, when it did), as in the usage records."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "switchboard_gateway_requests",
            "Model calls, by the model asked for, the calling service and the status answered.",
            ["model", "service", "status"],
            registry=registry,
        )
        self._duration = Histogram(
            "switchboard_gateway_request_duration_seconds",
            "Time of a model call in the gateway, retries and fallbacks included.",
            ["model"],
            buckets=_MODEL_BUCKETS,
            registry=registry,
        )
        self._tokens = Counter(
            "switchboard_gateway_tokens",
            "Tokens in (prompt) and out (completion), by the model that answered.",
            ["model", "service", "direction"],
            registry=registry,
        )
        self._cost = Counter(
            "switchboard_gateway_cost_usd",
            "Cost in US dollars at the catalog's prices, by the model that answered.",
            ["model", "service"],
            registry=registry,
        )
        self._series: dict[tuple[str, str | None, str, int], _CallSeries] = {}

    def count(
        self,
        *,
        model: str,
        answered_model: str | None,
        service: str,
        status: int,
        seconds: float,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
    ) -> None:
        key = (model, answered_model, service, status)
        series = self._series.get(key)
        if series is None:
            billed = answered_model or model
            series = self._series[key] = _CallSeries(
                requests=self._requests.labels(model, service, str(status)),
                duration=self._duration.labels(model),
                input_tokens=self._tokens.labels(billed, service, "input"),
                output_tokens=self._tokens.labels(billed, service, "output"),
                cost=self._cost.labels(billed, service),
            )
        series.requests.inc()
        series.duration.observe(seconds)
        if input_tokens:
            series.input_tokens.inc(input_tokens)
        if output_tokens:
            series.output_tokens.inc(output_tokens)
        if cost_usd:
            series.cost.inc(cost_usd)


@dataclass(frozen=True, slots=True)
class _CallSeries:
    """The series one kind of model call (model, answering model, service, status) counts in."""

    requests: Counter
    duration: Histogram
    input_tokens: Counter
    output_tokens: Counter
    cost: Counter


@dataclass(frozen=True, slots=True)
class BreakerFigure:
    model: str
    region: str
    deployment: str
    state: str
    recent_failures: int


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """The states read at a scrape. `breakers` is None when they could not be read (their
    Redis is out of reach)."""

    breakers: list[BreakerFigure] | None
    # What each batch writer holds and has done.
    writers: list[WriterFigures] = field(default_factory=list)
    # MCP servers by (health, status).
    mcp_servers: dict[tuple[str, str], int] = field(default_factory=dict)


class _LiveGauges:
    """A collector of the figures handed to `HubMetrics.exposition`."""

    def __init__(self) -> None:
        self.figures: LiveFigures | None = None

    def collect(self) -> Iterator[Metric]:
        figures = self.figures
        if figures is None:
            return
        if figures.breakers is not None:
            states = GaugeMetricFamily(
                "switchboard_gateway_breaker_state",
                "1 for the state each deployment's circuit breaker is in, 0 for the others.",
                labels=["model", "region", "deployment", "state"],
            )
            failures = GaugeMetricFamily(
                "switchboard_gateway_breaker_recent_failures",
                "Failures counted in the breaker's window (while it is closed).",
                labels=["model", "region", "deployment"],
            )
            for b in figures.breakers:
                for state in BREAKER_STATES:
                    labels = [b.model, b.region, b.deployment, state]
                    states.add_metric(labels, 1.0 if b.state == state else 0.0)
                failures.add_metric([b.model, b.region, b.deployment], b.recent_failures)
            yield states
            yield failures
        pending = GaugeMetricFamily(
            "switchboard_batch_writer_pending_rows",
            "Rows queued in memory for a batch writer's next write.",
            labels=["writer"],
        )
        done = {
            outcome: CounterMetricFamily(
                f"switchboard_batch_writer_{outcome}_rows",
                f"Rows a batch writer has {outcome.replace('_', ' ')} since the process started.",
                labels=["writer"],
            )
            for outcome in ("written", "set_aside", "dropped")
        }
        for writer in figures.writers:
            pending.add_metric([writer.name], writer.pending)
            done["written"].add_metric([writer.name], writer.written)
            done["set_aside"].add_metric([writer.name], writer.set_aside)
            done["dropped"].add_metric([writer.name], writer.dropped)
        yield pending
        yield from done.values()
        servers = GaugeMetricFamily(
            "switchboard_mcp_servers",
            "Registered MCP servers, by health (up, down, unknown) and status.",
            labels=["health", "status"],
        )
        for (health, status), count in sorted(figures.mcp_servers.items()):
            servers.add_metric([health, status], count)
        yield servers


class HubMetrics:
    def __init__(self) -> None:
        self._registry = CollectorRegistry()
        self.http = HttpMetrics(self._registry)
        self.gateway = GatewayMetrics(self._registry)
        ProcessCollector(registry=self._registry)
        self._live = _LiveGauges()
        self._registry.register(self._live)

    def exposition(self, figures: LiveFigures) -> bytes:
        """Every metric in Prometheus' text format, the states as in `figures`."""
        self._live.figures = figures
        try:
            return generate_latest(self._registry)
        finally:
            self._live.figures = None


def metrics_token_refusal(authorization: str | None, token: str) -> str | None:
    """Why a request may not read the metrics (None when it may): with a token configured
    (SWITCHBOARD_METRICS_TOKEN), the request must carry it as a bearer token."""
    if not token:
        return None
    scheme, _, sent = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and secrets.compare_digest(sent.strip().encode(), token.encode()):
        return None
    return (
        "The metrics need the metrics token: send `Authorization: Bearer <token>` with the "
        "value of SWITCHBOARD_METRICS_TOKEN."
    )
