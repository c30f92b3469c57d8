"""`LocalModels`: the `local:` provider. It resolves names to local models, reports the catalog
with each model's state, assembles and verifies weights (`ensure`), and hands out `LocalModel`s
that share the process's one inference queue.

Names (the `local:` prefix is optional):
- a catalog key: `local:qwen2.5-coder-1.5b` (the default), `local:qwen2.5-coder-0.5b`,
  `local:smollm2-135m`;
- `local:default`: the GGUF at `model_path` (DEPUTY_LOCAL_MODEL_PATH) when one is set, else the
  catalog default; `local:custom` names that file explicitly;
- `local:hf:<owner>/<repo>/<file>.gguf`: a Hugging Face GGUF, downloaded on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from deputy.llm.errors import ModelNotInstalled, UnknownModel
from deputy.llm.local.assembly import ensure_assembled, verified_path
from deputy.llm.local.backend import LoadOptions
from deputy.llm.local.catalog import CATALOG, DEFAULT_MODEL, PROVIDER, CatalogEntry
from deputy.llm.local.engine import LocalEngine, ModelSpec
from deputy.llm.local.files import Progress
from deputy.llm.local.gguf import GgufInfo, NotGguf, read_gguf_info
from deputy.llm.local.hardware import physical_cores
from deputy.llm.local.huggingface import HF_ENDPOINT, HfDownloader, HfFile
from deputy.llm.local.model import DEFAULT_MAX_TOKENS, LocalModel
from deputy.llm.local.packages import locate_parts

ModelState = Literal["not_installed", "installed", "assembled"]
ModelRole = Literal["default", "fast", "tiny", "custom", "huggingface"]
CUSTOM = f"{PROVIDER}:custom"
DEFAULT_ALIAS = f"{PROVIDER}:default"
HF_PREFIX = f"{PROVIDER}:hf:"
MAX_CONTEXT = 8192
_OVERHEAD = 256 * 1024 * 1024  # compute buffers and the like, on top of weights and KV cache


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """A catalog line: what the model is and whether it can run here."""

    name: str
    title: str
    role: ModelRole
    state: ModelState  # not_installed | installed (packages present) | assembled (verified)
    size_bytes: int  # of the GGUF (0 when unknown before a download)
    installed_bytes: int  # of its parts that are present and usable
    path: Path | None  # the verified GGUF once assembled
    install_command: str | None  # what makes it installed
    is_default: bool
    problems: tuple[str, ...] = ()


class LocalModels:
    def __init__(
        self,
        cache_dir: Path,
        *,
        model_path: Path | None = None,
        threads: int | None = None,
        engine: LocalEngine | None = None,
        context_tokens: int | None = None,
        catalog: Sequence[CatalogEntry] = CATALOG,
        search_path: Sequence[str] | None = None,
        allow_downloads: bool = True,
        hf_endpoint: str = HF_ENDPOINT,
        hf_token: str | None = None,
        hf_connect_timeout: float = 5.0,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self.cache_dir = cache_dir
        self.model_path = model_path
        self.threads = threads or physical_cores()
        self._engine = engine
        self._context_tokens = context_tokens
        self._catalog = {entry.name: entry for entry in catalog}
        self._search_path = search_path
        self._allow_downloads = allow_downloads
        self._hf = HfDownloader(
            cache_dir, endpoint=hf_endpoint, token=hf_token, connect_timeout=hf_connect_timeout
        )
        self._default_max_tokens = default_max_tokens
        self._models: dict[str, LocalModel] = {}
        self._lock = threading.Lock()

    @property
    def engine(self) -> LocalEngine:
        return self._engine or LocalEngine.shared()

    @property
    def default_name(self) -> str:
        return CUSTOM if self.model_path is not None else DEFAULT_MODEL

    # -- names ----------------------------------------------------------------------------------

    def canonical(self, name: str | None = None) -> str:
        """`name` as `local:<model>`; UnknownModel when nothing local answers to it."""
        raw = (name or DEFAULT_ALIAS).strip()
        provider, colon, rest = raw.partition(":")
        bare = rest if colon and provider == PROVIDER else raw
        full = f"{PROVIDER}:{bare}"
        if full == DEFAULT_ALIAS:
            return self.default_name
        if full in self._catalog:
            return full
        if full == CUSTOM and self.model_path is not None:
            return CUSTOM
        if full.startswith(HF_PREFIX):
            try:
                return HF_PREFIX + HfFile.parse(full.removeprefix(HF_PREFIX)).spec
            except ValueError as exc:
                raise UnknownModel(str(exc), details={"model": raw}) from exc
        known = ", ".join([*self._catalog, DEFAULT_ALIAS, f"{HF_PREFIX}<owner>/<repo>/<file>.gguf"])
        hint = "" if full != CUSTOM else " (set DEPUTY_LOCAL_MODEL_PATH to use local:custom)"
        raise UnknownModel(
            f"no local model is called {raw!r}{hint}; known: {known}", details={"model": raw}
        )

    # -- catalog --------------------------------------------------------------------------------

    def catalog(self) -> list[ModelStatus]:
        """Every catalog model with its state, then the custom GGUF when one is configured."""
        statuses = [self._entry_status(entry) for entry in self._catalog.values()]
        if self.model_path is not None:
            statuses.append(self._custom_status())
        return statuses

    def status(self, name: str | None = None) -> ModelStatus:
        full = self.canonical(name)
        if full in self._catalog:
            return self._entry_status(self._catalog[full])
        if full == CUSTOM:
            return self._custom_status()
        ref = HfFile.parse(full.removeprefix(HF_PREFIX))
        path = self._hf.downloaded(ref)
        return ModelStatus(
            name=full,
            title=f"{ref.filename} from huggingface.co/{ref.repo}",
            role="huggingface",
            state="assembled" if path else "not_installed",
            size_bytes=path.stat().st_size if path else 0,
            installed_bytes=path.stat().st_size if path else 0,
            path=path,
            install_command=None,
            is_default=False,
            problems=() if path else ("downloaded on first use",),
        )

    def _entry_status(self, entry: CatalogEntry) -> ModelStatus:
        locations = locate_parts(entry.parts, self._search_path)
        present = sum(location.part.size for location in locations if location.ok)
        verified = verified_path(entry, self.cache_dir, locations)
        state: ModelState = (
            "assembled"
            if verified
            else "installed"
            if all(location.ok for location in locations)
            else "not_installed"
        )
        return ModelStatus(
            name=entry.name,
            title=entry.title,
            role=entry.role,
            state=state,
            size_bytes=entry.size,
            installed_bytes=present,
            path=verified,
            install_command=entry.install_command,
            is_default=entry.name == self.default_name,
            problems=tuple(location.problem for location in locations if location.problem),
        )

    def _custom_status(self) -> ModelStatus:
        path = self.model_path
        assert path is not None
        problem = _custom_problem(path)
        size = path.stat().st_size if problem is None else 0
        return ModelStatus(
            name=CUSTOM,
            title=f"{path.name} (DEPUTY_LOCAL_MODEL_PATH)",
            role="custom",
            state="assembled" if problem is None else "not_installed",
            size_bytes=size,
            installed_bytes=size,
            path=path if problem is None else None,
            install_command=None,
            is_default=True,
            problems=(problem,) if problem else (),
        )

    # -- weights --------------------------------------------------------------------------------

    def ensure(self, name: str | None = None, *, progress: Progress | None = None) -> Path:
        """The verified GGUF of `name`: assembled from its packages and checked against the
        pinned sha256, or downloaded, on first call (slow); a stat afterwards. Blocking."""
        full = self.canonical(name)
        if full in self._catalog:
            entry = self._catalog[full]
            if not entry.in_place:  # fast path: a valid stamp needs no package lookups
                done = verified_path(entry, self.cache_dir, ())
                if done is not None:
                    return done
            locations = locate_parts(entry.parts, self._search_path)
            return ensure_assembled(entry, self.cache_dir, locations, progress)
        if full == CUSTOM:
            assert self.model_path is not None
            problem = _custom_problem(self.model_path)
            if problem is not None:
                raise ModelNotInstalled(problem)
            return self.model_path
        ref = HfFile.parse(full.removeprefix(HF_PREFIX))
        done = self._hf.downloaded(ref)
        if done is not None:
            return done
        if not self._allow_downloads:
            raise ModelNotInstalled(
                f"{full} is not downloaded and model downloads are disabled here; download the "
                "GGUF yourself and set DEPUTY_LOCAL_MODEL_PATH"
            )
        return self._hf.download(ref, progress)

    # -- models ---------------------------------------------------------------------------------

    def get(self, name: str | None = None) -> LocalModel:
        """The model called `name` (default: `default_name`). Raises UnknownModel for a name
        nothing local answers to and ModelNotInstalled (with the pip command) when a catalog
        model's packages are missing; weights are assembled and verified on first use."""
        full = self.canonical(name)
        with self._lock:
            model = self._models.get(full)
        if model is not None:
            return model
        context = self._context_tokens or MAX_CONTEXT
        if full in self._catalog:
            entry = self._catalog[full]
            status = self._entry_status(entry)
            if status.state == "not_installed":
                raise ModelNotInstalled(
                    f"{full} is not installed ({'; '.join(status.problems[:3])}). "
                    f"Install it with: {entry.install_command}"
                )
            context = self._context_tokens or entry.context_tokens
        elif full == CUSTOM:
            assert self.model_path is not None
            problem = _custom_problem(self.model_path)
            if problem is not None:
                raise ModelNotInstalled(problem)
            trained = _gguf_info(self.model_path).context_length or MAX_CONTEXT
            context = self._context_tokens or min(trained, MAX_CONTEXT)
        model = LocalModel(
            full,
            prepare=lambda: self._spec(full, context),
            engine=self.engine,
            context_tokens=context,
            default_max_tokens=self._default_max_tokens,
        )
        with self._lock:
            return self._models.setdefault(full, model)

    def _spec(self, full: str, context: int) -> ModelSpec:
        path = self.ensure(full)
        try:
            info: GgufInfo | None = _gguf_info(path)
        except (NotGguf, OSError):
            info = None
        kv = info.kv_cache_bytes(context) if info else None
        return ModelSpec(
            name=full,
            options=LoadOptions(path=path, context_tokens=context, threads=self.threads),
            estimated_bytes=path.stat().st_size + (kv or context * 128 * 1024) + _OVERHEAD,
        )

    def close(self) -> None:
        """Unload the models this provider handed out. The engine lives on: the shared one
        until interpreter exit, one passed in until its owner closes it."""
        with self._lock:
            names = set(self._models)
            self._models.clear()
        engine = self._engine or LocalEngine.running_shared()
        if names and engine is not None and not engine.closed:
            engine.unload(names)


def _gguf_info(path: Path) -> GgufInfo:
    stat = path.stat()
    return _cached_gguf_info(path, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=32)
def _cached_gguf_info(path: Path, size: int, mtime_ns: int) -> GgufInfo:
    del size, mtime_ns  # part of the cache key only
    return read_gguf_info(path)


def _custom_problem(path: Path) -> str | None:
    try:
        _gguf_info(path)
    except NotGguf as exc:
        return f"DEPUTY_LOCAL_MODEL_PATH: {exc}"
    except OSError as exc:
        return f"DEPUTY_LOCAL_MODEL_PATH={path} cannot be read: {exc.strerror or exc}"
    return None
