"""OpenCode's configuration inside a sandbox: its config JSON, plugin dir and environment.

Explicit provider and model, no network probes, no interactive tools, the sync-gate plugin
(file changes wait for git sync) and Inspect's tools (``TOOLS``). Pure apart from writing the plugin files.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sandbox.runtime import models_catalog
from sandbox.runtime.config import RuntimeConfig

PLUGIN_SOURCE = Path(__file__).with_name("opencode_plugin")
RUNTIME_ROOT = Path(__file__).resolve().parents[2]  # holds the sandbox package
# the agent's tools that call the control plane: pull requests, and child sessions (control/children.py)
TOOLS = (
    "create-pull-request",
    "spawn-session",
    "session-status",
    "send-session-prompt",
    "cancel-session",
    "screenshot",
)
# Bundled with every sandbox (beside the skills an admin adds): how to show a visible change.
VISUAL_SKILL = """# Showing a visible change

When a change affects what people see (a page, a component, styles), show it:
1. Start the app if it is not running (the repository's `.inspect/start.sh` may already serve it;
   `.inspect/preview` lists its ports) and find the page the change touches.
2. Before changing anything, call the `screenshot` tool on that page (caption "Before: ...").
3. Make the change, reload if needed, and call `screenshot` again on the same page and size
   (caption "After: ..."). Use `selector` for one element, `full_page` for a long page.
4. The screenshots are attached to the session and embedded in the pull request you open; mention
   in your answer what they show. If no browser is available, say so instead of guessing.
"""
BUNDLED_SKILLS = {"visual-verification": VISUAL_SKILL}
OFFLINE_ENV = {
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_EXTERNAL_SKILLS": "1",
    "OPENCODE_DISABLE_CLAUDE_CODE": "1",
}


def opencode_config(config: RuntimeConfig) -> dict[str, Any]:
    body: dict[str, Any] = {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        "lsp": False,
        "formatter": False,
        # OpenCode's own undo snapshots (a shadow git of the workspace, written at every step) are not
        # used here — the session's branch is the record — and cost ~0.1 s a prompt, more in big trees
        "snapshot": False,
        # Unattended: nobody is there to answer "may I?". The sandbox is the boundary, not prompts.
        "permission": "allow",
        "tools": {"question": False},
    }
    if config.model:
        body["model"] = config.model
        body["small_model"] = config.model
    if config.llm_base_url:
        model_id = config.llm_model or "default"
        body["provider"] = {
            "llm": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "LLM",
                "options": {"baseURL": config.llm_base_url, "apiKey": config.llm_api_key or "none"},
                "models": {
                    model_id: {"name": model_id, "tool_call": True, "limit": {"context": 128000, "output": 16000}}
                },
            }
        }
    if config.mcp:
        body["mcp"] = json.loads(config.mcp)  # the control plane's; its secrets are {env:…} references
    providers = {config.model.split("/", 1)[0]} if "/" in config.model else set()
    if config.llm_base_url:
        providers.add("llm")
    if providers:
        body["enabled_providers"] = sorted(providers)
    return body


def write_models(template: Path | None, providers: list[str], target: Path) -> dict[str, str]:
    """The cut of the model catalogue for ``providers``, and the variable that points OpenCode at it.

    Nothing when there is no catalogue beside the plugin template or no provider is pinned (then
    OpenCode keeps its own, whole catalogue).
    """
    source = template / "models" if template else None
    if source is None or not source.is_dir() or not providers:
        return {}
    target.write_text(json.dumps(models_catalog.cut(source, providers)))
    return {"OPENCODE_MODELS_PATH": str(target)}


_SKILL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def write_skills(found: str, folder: Path) -> list[str]:
    """Each skill (the bundled ones, then the repository's: ``found``, JSON) as an instruction file
    OpenCode reads with every prompt; their paths."""
    given = json.loads(found) if found else {}
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in sorted({**BUNDLED_SKILLS, **given}.items()):
        if _SKILL_NAME.match(name) and isinstance(content, str):
            path = folder / f"{name}.md"
            path.write_text(content)
            paths.append(str(path))
    return paths


def prepare_agent(config: RuntimeConfig, *, base_env: Mapping[str, str], password: str, marker: Path) -> dict[str, str]:
    """Write OpenCode's config dir (plugin, prepared package, model catalogue) and return its environment."""
    config_home = Path(base_env.get("XDG_CONFIG_HOME", str(config.root / "home" / ".config")))
    oc_dir = config_home / "opencode"
    for folder in ("plugin", "tool", "inspect"):
        (oc_dir / folder).mkdir(parents=True, exist_ok=True)
    shutil.copy(PLUGIN_SOURCE / "inspect-sync-gate.js", oc_dir / "plugin" / "inspect-sync-gate.js")
    # the tools' shared client, outside tool/ (OpenCode makes a tool of every file there)
    shutil.copy(PLUGIN_SOURCE / "inspect-api.js", oc_dir / "inspect" / "inspect-api.js")
    for name in TOOLS:
        shutil.copy(PLUGIN_SOURCE / f"{name}.js", oc_dir / "tool" / f"{name}.js")
    template = config.plugin_template
    if template and template.exists():
        # OpenCode npm-installs its plugin package into each config dir unless it is already there;
        # a prepared copy avoids a ~70 s stall where the registry is unreachable.
        for name in ("package.json", "package-lock.json"):
            if (template / name).exists() and not (oc_dir / name).exists():
                shutil.copy(template / name, oc_dir / name)
        if not (oc_dir / "node_modules").exists():
            (oc_dir / "node_modules").symlink_to(template / "node_modules")
    body = opencode_config(config)
    skills = write_skills(config.skills, oc_dir / "inspect-skills")
    if skills:
        body["instructions"] = skills
    models = write_models(template, body.get("enabled_providers", []), config.state_dir / "models.json")
    return {
        **base_env,
        **OFFLINE_ENV,
        **models,
        "OPENCODE_SERVER_PASSWORD": password,
        "OPENCODE_CONFIG_CONTENT": json.dumps(body),
        "INSPECT_SYNC_MARKER": str(marker),
        "INSPECT_PLAN_MARKER": str(config.state_dir / "plan-mode"),  # the agent writes it for plan prompts
        # the screenshot tool runs the runtime's own helper (sandbox/runtime/screenshot.py)
        "INSPECT_RUNTIME_PYTHON": sys.executable,
        "INSPECT_RUNTIME_PATH": str(RUNTIME_ROOT),
        "GIT_COMMITTER_NAME": config.committer_name,
        "GIT_COMMITTER_EMAIL": config.committer_email,
    }
