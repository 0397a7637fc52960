"""``python -m inspect_app.web_process``: the server itself, started by ``inspect_app.serve``.

Reflex's production backend (Granian, one worker) on ONE port — pages, Reflex's state socket and
/api — serving the frontend build that ``serve`` published (``REFLEX_WEB_WORKDIR`` names it) and
compiling nothing: what ``reflex run --env prod --single-port`` does after its own build, which would
rewrite the files other replicas serve (see ``frontend.py``).
"""

from __future__ import annotations

from reflex.utils import exec as reflex_exec
from reflex_base import constants
from reflex_base.environment import environment

from inspect_app.settings import load_settings


def main() -> None:
    settings = load_settings()
    environment.REFLEX_ENV_MODE.set(constants.Env.PROD)
    environment.REFLEX_SKIP_COMPILE.set(True)  # the pages were compiled with the published build
    loglevel = constants.LogLevel(settings.log_level.lower())
    reflex_exec.run_backend_prod(
        settings.host, settings.port, loglevel.subprocess_level(), mount_frontend_compiled_app=True
    )


if __name__ == "__main__":
    main()
