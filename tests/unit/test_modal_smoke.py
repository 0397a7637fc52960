"""``scripts/modal_smoke.py`` without a Modal account: it skips cleanly, and its measuring path runs
against the signature-bound fake (so a real run fails on Modal, not on the script)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.fakes.modal_sdk import FakeModal

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "modal_smoke.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("modal_smoke", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_credentials_it_says_so_and_skips(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env |= {"MODAL_CONFIG_PATH": str(tmp_path / "none.toml"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"skipped": True, "reason": "no Modal credentials"}
    assert "skipped" in done.stderr


def test_a_profile_in_the_modal_config_counts_as_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smoke = load_script()
    config = tmp_path / "modal.toml"
    config.write_text('[work]\ntoken_id = "ak-1"\ntoken_secret = "as-1"\nactive = true\n')
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(config))
    assert smoke.credentials() == f"{config} [work]"
    config.write_text('[work]\ntoken_id = "ak-1"\n')
    assert smoke.credentials() is None


async def test_the_measuring_path_runs_against_the_fake() -> None:
    smoke = load_script()
    sdk = FakeModal()
    result = await smoke.smoke(smoke.parse([]), "environment", sdk)
    assert result["ok"], result
    for figure in ("spawn_ready_s", "snapshot_s", "snapshot_boot_s", "image_build_s", "image_boot_s"):
        assert result[figure] >= 0
    assert result["token_in_image"] is False and result["estimated_cost_usd"] >= 0
    assert all(sandbox.terminated for sandbox in sdk.created) and sdk.images == set()  # nothing left behind
    json.dumps(result)  # one JSON line
