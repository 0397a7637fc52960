"""The UI package does not import the app back: ``inspect_app.py`` (the composition root) imports the
pages and states, never the other way round (it registers itself with ``ui.state.use_app``)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import inspect_app.ui

UI = Path(inspect_app.ui.__file__).parent


def test_no_ui_module_imports_the_app() -> None:
    offenders = [p.relative_to(UI) for p in UI.rglob("*.py") if "inspect_app.inspect_app" in p.read_text()]
    assert offenders == []
    modules = [m.name for m in pkgutil.walk_packages([str(UI)], prefix="inspect_app.ui.")]
    assert "inspect_app.ui.pages.settings" in modules and "inspect_app.ui.pages.login" in modules  # pages live there
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; import {', '.join(modules)}; print('inspect_app.inspect_app' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert loaded.stdout.strip() == "False"
