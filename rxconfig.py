"""Reflex configuration. Host and port come from Inspect's settings (inspect_app.settings)."""

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from inspect_app.settings import get_settings

_settings = get_settings()
# Where built pages open their state socket. Unset, Reflex bakes this server's own port into the
# bundle (the host is taken from the page), so behind a balancer every page would follow whichever
# replica built last; with INSPECT_PUBLIC_URL set, every replica builds the same bundle, pointing at it
# (and, the deploy URL being the same too, shares one build: inspect_app/frontend.py).
_public = _settings.public_url.rstrip("/")
_socket = {"api_url": _public, "deploy_url": _public} if _public else {}

config = rx.Config(
    app_name="inspect_app",
    show_built_with_reflex=False,
    telemetry_enabled=False,
    disable_plugins=[SitemapPlugin],
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", gray_color="slate", radius="medium"))],
    backend_host=_settings.host,
    frontend_port=_settings.port,
    backend_port=_settings.port,
    **_socket,
)
