"""The sign-in and access-denied pages, as plain HTML: they must work before the browser has a
session, and without one Reflex's socket refuses to connect (``api/session_guard.py``).

Pure functions of what they show; ``api/auth.py`` serves them. Every value that reaches the page
is escaped; error messages are chosen from a fixed table, never echoed from the request.
"""

from __future__ import annotations

from html import escape

# A token from an older version of this app, kept in localStorage (readable by any script on the
# page), moves once: it is removed, then posted to the server, which answers with the cookie.
MOVE_STORED_KEY = """
(() => {
  let old = null;
  try { old = localStorage.getItem("inspect_token"); localStorage.removeItem("inspect_token"); } catch (e) {}
  if (old && !new URLSearchParams(location.search).has("error")) {
    const form = document.getElementById("login-form");
    form.elements.token.value = old;
    form.submit();
  }
})();
"""

ERRORS = {
    "token": "That token is not valid. Ask your Inspect admin for a personal token.",
    "link": "That sign-in link was already used or has expired. Restart Inspect for a new one, or paste your token.",
}

STYLE = """
:root{color-scheme:light dark;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif}
body{margin:0;min-height:100vh;display:grid;place-items:center;background:Canvas;color:CanvasText}
main{width:min(28rem,100% - 2rem);display:flex;flex-direction:column;gap:.9rem}
h1{margin:0;font-size:1.6rem}
p{margin:0;opacity:.8}
form{display:flex;flex-direction:column;gap:.6rem}
input{font:inherit;padding:.5rem .6rem;border:1px solid #8888;border-radius:6px;background:transparent;color:inherit}
button,.button{font:inherit;padding:.5rem .9rem;border:0;border-radius:6px;background:#3e63dd;color:#fff;
  text-decoration:none;cursor:pointer;text-align:center}
.error{padding:.6rem .8rem;border-radius:6px;background:#e5484d22;color:#e5484d}
code{font-size:.9em}
"""


def _page(title: str, body: str, script: str = "") -> str:
    tail = f"<script>{script}</script>" if script else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} · Inspect</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main>{tail}</body></html>"
    )


def login_page(*, github: bool, local_mode: bool, error: str = "") -> str:
    """``/login``: GitHub sign-in (when configured) and the API-token form, which posts to the server."""
    parts = ["<h1>Sign in</h1>"]
    if error in ERRORS:
        parts.append(f"<div class=error id=login-error role=alert>{escape(ERRORS[error])}</div>")
    if github:
        parts.append('<a class=button id=github-sign-in href="/api/auth/github/login">Sign in with GitHub</a>')
    if local_mode:
        parts.append("<p>Open the one-time sign-in link <code>make run</code> printed, or paste the API token.</p>")
    parts.append(
        "<p>Paste your personal API token (from <code>python -m inspect_app.admin create-user</code>"
        + (", or the <code>local-token</code> file in the data directory" if local_mode else "")
        + ").</p>"
        '<form id=login-form method=post action="/api/auth/session">'
        '<input name=token id=login-token type=password placeholder="insp_…" autocomplete=off autofocus required>'
        "<button type=submit id=login-submit>Sign in</button></form>"
    )
    return _page("Sign in", "".join(parts), MOVE_STORED_KEY)


def denied_page(reason: str) -> str:
    """``/denied``: why GitHub sign-in refused this person (the text is escaped, never markup)."""
    shown = reason.strip()[:300] or "You are not allowed to use this instance."
    return _page(
        "Access denied",
        "<h1>Access denied</h1>"
        f"<div class=error id=denied-reason role=alert>{escape(shown)}</div>"
        "<p>Ask the person who runs this Inspect instance to add you to its allowlist.</p>"
        '<a href="/login">Try again</a>',
    )
