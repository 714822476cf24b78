"""Traces of agent runs: every model and tool call of a run, sent to the hub (and,
optionally, exported as OpenTelemetry spans).

The package itself imports nothing, so the hub can use the records it receives
(`agents.tracing.records`) without loading the runtime; the tracer is `agents.tracing.tracer`.
"""
