"""Page routes and URL builders, in one place."""

HOME = "/"


def session_url(session_id: str) -> str:
    return f"/sessions/{session_id}"
