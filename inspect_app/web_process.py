"""``python -m inspect_app.web_process``: the server itself, started by ``inspect_app.serve``.

Reflex's production backend (Granian, one worker) on ONE port — pages, Reflex's state socket and
/api — serving the frontend build that ``serve`` published (``REFLEX_WEB_WORKDIR`` names it) and
compiling nothing: what ``reflex run --env prod --single-port`` does after its own build, which would
rewrite the files other replicas serve (see ``frontend.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

from reflex.utils import exec as reflex_exec
from reflex_base import constants
from reflex_base.environment import environment

from inspect_app import frontend
from inspect_app.settings import load_settings


def main() -> None:
    settings = load_settings()
    # held for the process's life: a later build's clean-up leaves this one alone
    served = frontend.hold(Path(os.environ["REFLEX_WEB_WORKDIR"]))
    environment.REFLEX_ENV_MODE.set(constants.Env.PROD)
    environment.REFLEX_SKIP_COMPILE.set(True)  # the pages were compiled with the published build
    level = constants.LogLevel(settings.log_level.lower()).subprocess_level()
    try:
        reflex_exec.run_backend_prod(settings.host, settings.port, level, mount_frontend_compiled_app=True)
    finally:
        served.close()


if __name__ == "__main__":
    main()
