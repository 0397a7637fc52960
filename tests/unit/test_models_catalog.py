"""The model catalogue cut: found in a binary, read through node, cut to the sandbox's providers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sandbox.runtime.agent_config import write_models
from sandbox.runtime.models_catalog import CatalogError, cut, extract, object_literal, split

ROOT = Path(__file__).resolve().parents[2]
# Shaped like the minified literal in OpenCode's binary: unquoted keys, !0/!1, braces and quotes in strings.
LITERAL = (
    b'{deepinfra:{id:"deepinfra",env:["DEEPINFRA_API_KEY"],models:{"a/b":{id:"a/b",name:"say \\"}\\"",'
    b"tool_call:!0,attachment:!1}}},anthropic:{id:'anthropic',name:`{tmpl}`,models:{c:{id:\"c\",limit:{context:200000}}}}}"
)


def fake_binary(tmp_path: Path, literal: bytes = LITERAL) -> Path:
    path = tmp_path / "opencode"
    path.write_bytes(b"\x7fELF junk {not:this} var p=n.sync(()=>(" + literal + b"));more{code}")
    return path


def test_the_literal_ends_at_its_own_closing_brace_not_inside_strings() -> None:
    blob = b"x" + LITERAL + b"}}tail"
    assert object_literal(blob, 1) == LITERAL
    with pytest.raises(CatalogError):
        object_literal(b'{a:"}"', 0)


@pytest.mark.skipif(shutil.which("node") is None, reason="node reads the literal")
def test_extract_turns_the_embedded_literal_into_models_dev_json(tmp_path: Path) -> None:
    catalog = extract(fake_binary(tmp_path))
    model = catalog["deepinfra"]["models"]["a/b"]
    assert model == {"id": "a/b", "name": 'say "}"', "tool_call": True, "attachment": False}
    assert catalog["anthropic"]["name"] == "{tmpl}"
    with pytest.raises(CatalogError, match="no embedded model catalogue"):
        extract(fake_binary(tmp_path, b"{openai:{}}"))


def test_cut_keeps_only_the_enabled_providers_and_skips_unknown_ones(tmp_path: Path) -> None:
    catalog = {"anthropic": {"models": {"c": {}}}, "openai": {"models": {}}, "groq": {"models": {}}}
    split(catalog, tmp_path / "models")
    kept = cut(tmp_path / "models", ["openai", "llm", "anthropic", "../models/groq"])
    assert kept == {"anthropic": catalog["anthropic"], "openai": catalog["openai"]}


def test_a_sandbox_points_opencode_at_its_cut_or_at_nothing(tmp_path: Path) -> None:
    template = tmp_path / "template"
    template.mkdir()
    target = tmp_path / "models.json"
    assert write_models(template, ["anthropic"], target) == {}  # no catalogue: OpenCode's own
    split({"anthropic": {"models": {"c": {}}}, "openai": {"models": {}}}, template / "models")
    assert write_models(template, [], target) == {}  # no pinned provider: nothing to cut to
    assert write_models(template, ["anthropic", "llm"], target) == {"OPENCODE_MODELS_PATH": str(target)}
    assert json.loads(target.read_text()) == {"anthropic": {"models": {"c": {}}}}


def test_make_deps_extracted_the_pinned_binarys_catalogue() -> None:
    directory = ROOT / ".tools" / "opencode-plugin" / "models"
    if not directory.is_dir():
        pytest.skip("run `make deps`")
    catalog = cut(directory, ["anthropic", "openai", "openrouter"])
    assert {"anthropic", "openai", "openrouter"} <= set(catalog)
    assert any(model.startswith("claude-") for model in catalog["anthropic"]["models"])
