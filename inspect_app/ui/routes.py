"""Page routes and URL builders, in one place."""

HOME = "/"
LOGIN = "/login"
SESSION = "/sessions/[sid]"
SETTINGS = "/settings"
STATS = "/stats"


def session_url(session_id: str) -> str:
    return f"/sessions/{session_id}"
