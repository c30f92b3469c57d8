"""The only module that touches `xllamacpp` (llama.cpp in process). It is imported lazily, so
importing `deputy.llm` stays cheap, and typed here, so the rest of the package is checked.

`xllamacpp.Server` is llama.cpp's own server loop running in a native thread; it also listens on
an HTTP port. We bind it to 127.0.0.1 on a random port and protect it with a random API key that
we never use, so nothing else on the machine can reach the model through that port."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

ChunkCallback = Callable[[Any], bool]


class LlamaServer(Protocol):
    def handle_chat_completions(
        self, body: dict[str, Any], callback: ChunkCallback | None = None
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class LoadOptions:
    path: Path
    context_tokens: int
    threads: int
    prompt_cache_mib: int = 512  # llama.cpp keeps recent prompts' KV in RAM up to this size


def load_server(options: LoadOptions) -> LlamaServer:
    """Load a GGUF into a new llama.cpp server (blocking: seconds for a 1 GB model)."""
    import xllamacpp  # type: ignore[import-untyped]

    params = xllamacpp.CommonParams()
    params.model.path = str(options.path)
    params.n_ctx = options.context_tokens
    params.n_parallel = 1  # one slot: the engine runs one generation at a time anyway
    params.cpuparams.n_threads = options.threads
    params.cpuparams_batch.n_threads = options.threads
    params.cache_ram_mib = options.prompt_cache_mib
    params.verbosity = 0
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.api_keys = [secrets.token_urlsafe(32)]
    params.n_threads_http = 1
    return cast(LlamaServer, xllamacpp.Server(params))


def json_schema_to_grammar(schema: Mapping[str, Any]) -> str:
    import xllamacpp

    return str(xllamacpp.json_schema_to_grammar(dict(schema)))


def system_info() -> str:
    import xllamacpp

    return str(xllamacpp.get_system_info())
