"""The sandbox image: what every sandbox needs (git, Node 22, Python 3.12, a pinned OpenCode and
the sandbox runtime), as a Modal image definition — and the same list checked on this machine for
the local provider.

A Modal image is two layers of different lifetimes:

- the system (``system_image``): packages and tools, built once by Modal and cached;
- the runtime (``with_runtime``): the ``sandbox`` package, mounted from this checkout when a
  container starts (``add_local_python_source``, not copied into a build layer). Every image a
  sandbox boots from gets it on top — the base image, and also a prebuilt image or a session
  snapshot (``Image.from_id``) — so a restored sandbox runs this server's runtime, never the one
  its snapshot happened to capture.

The package lands in ``/root/sandbox`` (``RUNTIME_PARENT``); the provider puts that parent on
``PYTHONPATH``. The SDK's default ``ignore`` keeps only ``.py`` files, which would drop the OpenCode
plugin's ``.js`` files that ``runtime/agent_config.py`` copies at boot: ``runtime_ignored`` keeps
every file but bytecode and dot-files.

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
APT_PACKAGES = (
    "git",
    "curl",
    "ca-certificates",
    "gnupg",
    # The agent's screenshot tool runs headless Chromium at /usr/bin/chromium; fonts so pages have text.
    "chromium",
    "fonts-liberation",
)
PLUGIN_DIR = "/opt/opencode-plugin"  # OpenCode's plugin package, installed once (see FIELD-NOTES)
SANDBOX_ROOT = "/sandbox"
RUNTIME_PACKAGE = "sandbox"
RUNTIME_PARENT = "/root"  # where add_local_python_source puts a package (the runtime's PYTHONPATH)
SOURCE = Path(__file__).resolve().parent


def runtime_ignored(path: Path) -> bool:
    """Whether a file of the runtime package (``path`` relative to it) stays out of the image: bytecode
    and anything under a dot-name, as the SDK's own default does — and nothing else."""
    return path.suffix == ".pyc" or any(part == "__pycache__" or part.startswith(".") for part in path.parts)


def system_image(sdk: Any) -> Any:
    """Everything but the runtime: cached by Modal, rebuilt only when this list changes."""
    return (
        sdk.Image.debian_slim(python_version=PYTHON_VERSION)
        .apt_install(*APT_PACKAGES)
        .run_commands(
            f"curl -fsSL https://deb.nodesource.com/setup_{NODE_MAJOR}.x | bash -",
            "apt-get install -y nodejs",
            f"npm install -g opencode-ai@{OPENCODE_VERSION}",
            f"mkdir -p {PLUGIN_DIR} && npm install --prefix {PLUGIN_DIR} @opencode-ai/plugin@{OPENCODE_VERSION}",
            f"mkdir -p {SANDBOX_ROOT}",
        )
        .pip_install(*RUNTIME_PACKAGES)
    )


def with_runtime(image: Any) -> Any:
    """``image`` with this checkout's runtime mounted on top (the last layer: Modal allows no build
    step after a mount). Nothing of ``inspect_app``."""
    return image.add_local_python_source(RUNTIME_PACKAGE, ignore=runtime_ignored)


def modal_image(sdk: Any) -> Any:
    """The base image of every Modal sandbox (and of every prebuilt image built on top of it)."""
    return with_runtime(system_image(sdk))


def missing_local_tools(opencode_bin: str) -> list[str]:
    """What a local sandbox needs that this machine lacks (empty when everything is there)."""
    missing = [tool for tool in ("git", "bash") if shutil.which(tool) is None]
    if not (Path(opencode_bin).exists() or shutil.which(opencode_bin)):
        missing.append(f"opencode ({opencode_bin}; run `make deps`)")
    return missing
