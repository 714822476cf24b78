"""Traces of agent runs: every model and tool call of a run, in the hub's database (and,
optionally, as OpenTelemetry spans)."""

from agents.tracing.tracer import OpenStep, RunTrace, Tracer

__all__ = ["OpenStep", "RunTrace", "Tracer"]
