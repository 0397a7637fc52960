"""The sandbox image: what every sandbox needs (git, Node 22, Python 3.12, a pinned OpenCode and
the sandbox runtime), as a Modal image definition — and the same list checked on this machine for
the local provider.

Building the Modal definition is lazy and offline (Modal builds it, remotely, on first use). The
``sdk`` argument is the ``modal`` module, passed in so that only ``sandbox/providers/modal.py``
imports it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

OPENCODE_VERSION = "1.18.33"  # the same pin as the Makefile's, so local and Modal sandboxes match
NODE_MAJOR = 22
PYTHON_VERSION = "3.12"
RUNTIME_PACKAGES = ("pydantic==2.14.4", "httpx==0.28.1", "websockets==17.4")  # what sandbox/runtime imports
PLUGIN_DIR = "/opt/opencode-plugin"  # OpenCode's plugin package, installed once (see FIELD-NOTES)
SANDBOX_ROOT = "/sandbox"
SOURCE = Path(__file__).resolve().parent


def modal_image(sdk: Any) -> Any:
    """The base image of every Modal sandbox (and of every prebuilt image built on top of it)."""
    return (
        sdk.Image.debian_slim(python_version=PYTHON_VERSION)
        .apt_install("git", "curl", "ca-certificates", "gnupg")
        .run_commands(
            f"curl -fsSL https://deb.nodesource.com/setup_{NODE_MAJOR}.x | bash -",
            "apt-get install -y nodejs",
            f"npm install -g opencode-ai@{OPENCODE_VERSION}",
            f"mkdir -p {PLUGIN_DIR} && npm install --prefix {PLUGIN_DIR} @opencode-ai/plugin@{OPENCODE_VERSION}",
            f"mkdir -p {SANDBOX_ROOT}",
        )
        .pip_install(*RUNTIME_PACKAGES)
        .env({"PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"})
        .add_local_python_source("sandbox")  # the runtime and the protocol; nothing of inspect_app
    )


def missing_local_tools(opencode_bin: str) -> list[str]:
    """What a local sandbox needs that this machine lacks (empty when everything is there)."""
    missing = [tool for tool in ("git", "bash") if shutil.which(tool) is None]
    if not (Path(opencode_bin).exists() or shutil.which(opencode_bin)):
        missing.append(f"opencode ({opencode_bin}; run `make deps`)")
    return missing
