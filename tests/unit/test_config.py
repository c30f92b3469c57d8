from __future__ import annotations

from pathlib import Path

import pytest

from deputy.config import ConfigError, load_settings


def test_embedded_defaults_live_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d")
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'd' / 'deputy.sqlite3'}"
    assert settings.resolved_jobs_database_url.endswith("jobs.sqlite3")
    assert settings.materials_dir == tmp_path / "d" / "materials"


def test_postgres_jobs_share_the_main_database() -> None:
    settings = load_settings(database_url="postgresql://u@db/deputy")
    assert settings.resolved_jobs_database_url == "postgresql://u@db/deputy"


def test_environment_variables_and_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPUTY_PORT", "9123")
    assert load_settings().port == 9123
    config_file = tmp_path / "deputy.env"
    config_file.write_text("DEPUTY_MAX_UPLOAD_BYTES=4096\n")
    from deputy.config import Settings

    assert Settings(_env_file=config_file).max_upload_bytes == 4096  # type: ignore[call-arg]


@pytest.mark.parametrize("secret", [None, "changeme", "short-but-random-Zx81", "password"])
def test_production_refuses_insecure_secrets(secret: str | None) -> None:
    with pytest.raises(ConfigError, match="DEPUTY_SECRET_KEY"):
        load_settings(environment="production", secret_key=secret)


def test_production_accepts_a_strong_secret() -> None:
    strong = "k" * 8 + "Qz81-random-value-of-enough-length-xx"
    assert load_settings(environment="production", secret_key=strong).secret_key_value() == strong


def test_development_generates_and_keeps_a_private_secret(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d")
    first = settings.secret_key_value()
    assert len(first) >= 32
    assert load_settings(data_dir=tmp_path / "d").secret_key_value() == first
    assert (tmp_path / "d" / "secret_key").stat().st_mode & 0o077 == 0


def test_bad_values_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="port"):
        load_settings(port=70000)


def test_api_and_worker_on_one_host_get_distinct_executor_ids() -> None:
    api = load_settings(process_role="api").resolved_executor_id
    worker = load_settings(process_role="worker").resolved_executor_id
    assert api != worker
    assert load_settings(executor_id="w7", process_role="worker").resolved_executor_id == "w7"
