from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from inspect_app.errors import ConfigError
from inspect_app.settings import Settings, env_name, load_settings


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.host == "127.0.0.1"
    assert s.port == 3000
    assert s.sandbox_provider == "local"
    assert s.redis_url == ""
    assert s.resolved_database_url == f"sqlite:///{(tmp_path / 'data' / 'inspect.db')}"
    assert s.resolved_public_url == "http://127.0.0.1:3000"
    assert s.listens_on_loopback


def test_reads_prefixed_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("INSPECT_PORT=4123\nINSPECT_REDIS_URL=redis://127.0.0.1:6379/0\n")
    monkeypatch.setenv("INSPECT_HOST", "::1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    s = load_settings()
    assert s.port == 4123
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.listens_on_loopback
    assert s.anthropic_api_key.get_secret_value() == "sk-ant-test"
    assert "sk-ant-test" not in repr(s)


def test_llm_endpoint_becomes_default_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INSPECT_LLM_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("INSPECT_LLM_MODEL", "qwen3-coder")
    assert load_settings().resolved_default_model == "llm/qwen3-coder"
    monkeypatch.setenv("INSPECT_DEFAULT_MODEL", "openai/gpt-5")
    assert load_settings().resolved_default_model == "openai/gpt-5"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("INSPECT_SANDBOX_PROVIDER", "docker", "INSPECT_SANDBOX_PROVIDER: Input should be 'local' or 'modal'"),
        ("INSPECT_SECRET_KEY", "not-base64-of-32-bytes", "INSPECT_SECRET_KEY: must be 32 bytes"),
        ("INSPECT_PORT", "http", "INSPECT_PORT:"),
        ("INSPECT_DATABASE_URL", "mysql://x", "INSPECT_DATABASE_URL: must be a sqlite"),
        ("INSPECT_LLM_BASE_URL", "localhost:11434", "INSPECT_LLM_BASE_URL: must start with http"),
        ("INSPECT_MEDIA_S3_ENDPOINT_URL", "minio:9000", "INSPECT_MEDIA_S3_ENDPOINT_URL: must start with http"),
        ("INSPECT_MEDIA_S3_BUCKET", "My_Bucket", "INSPECT_MEDIA_S3_BUCKET: String should match pattern"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_secret_key_is_generated_once_with_private_permissions(settings: Settings) -> None:
    key = settings.encryption_key()
    path = settings.data_dir / "secret.key"
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings.encryption_key() == key


def test_given_secret_key_is_used(tmp_path: Path) -> None:
    raw = bytes(range(32))
    s = Settings(_env_file=None, data_dir=tmp_path, secret_key=base64.urlsafe_b64encode(raw).decode())  # type: ignore[call-arg]
    assert s.encryption_key() == raw
    assert not (tmp_path / "secret.key").exists()


def test_corrupt_key_file_is_a_config_error(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "secret.key").write_text("short\n")
    with pytest.raises(ConfigError, match=r"secret\.key: must be 32 bytes"):
        settings.encryption_key()


def test_non_loopback_host_detection(tmp_path: Path) -> None:
    assert not Settings(_env_file=None, host="0.0.0.0").listens_on_loopback  # type: ignore[call-arg]
    assert Settings(_env_file=None, host="127.0.0.2").listens_on_loopback  # type: ignore[call-arg]


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [env_name(field) for field in Settings.model_fields if env_name(field) not in readme]
    assert missing == []


def test_previews_need_a_site_of_their_own() -> None:
    """A preview runs agent-written JavaScript: on the app's own site it would get the app's cookies."""
    import pydantic

    from inspect_app.settings import Settings

    for public_url, domain in (
        ("https://inspect.example.com", "previews.example.com"),
        ("http://localhost:3000", "localhost"),
    ):
        with pytest.raises(pydantic.ValidationError, match="need a domain of their own"):
            Settings(_env_file=None, public_url=public_url, preview_domain=domain)  # type: ignore[call-arg]
    ok = Settings(_env_file=None, public_url="https://inspect.example.com", preview_domain="inspect-previews.dev")  # type: ignore[call-arg]
    assert ok.preview_url("s-80.inspect-previews.dev") == f"http://s-80.inspect-previews.dev:{ok.resolved_preview_port}"
    assert Settings(_env_file=None).preview_domain == "localhost"  # type: ignore[call-arg]  # the app at 127.0.0.1
