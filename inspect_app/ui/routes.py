"""Page routes and URL builders, in one place."""

HOME = "/"
LOGIN = "/login"  # served by the API (api/auth.py): it works without the socket
LOGOUT = "/api/auth/logout"
SESSION = "/sessions/[sid]"
SETTINGS = "/settings"
STATS = "/stats"
AUTOMATIONS = "/automations"


def session_url(session_id: str) -> str:
    return f"/sessions/{session_id}"


EXTENSION = "/extension"  # the Chrome extension's side panel (may be framed by the extension)
EXTENSION_SESSION = "/extension/[sid]"


def extension_session_url(session_id: str) -> str:
    return f"/extension/{session_id}"
