"""Keyboard: a command palette (Ctrl/Cmd-K) and shortcuts, with a help overlay (``?``).

All in the browser: the palette lists the pages and the newest sessions (``GET /api/sessions``,
same origin, with the person's cookie) and filters them as one types; the shortcuts press the
page's own buttons, so they do exactly what a click does. Text from the server (session titles) is
only ever set as ``textContent``, never parsed as HTML.
"""

from __future__ import annotations

import json

# (keys, what they do): the help overlay's list, and the README's
SHORTCUTS: list[tuple[str, str]] = [
    ("Ctrl/⌘ K", "Command palette: jump to a session, start one, open Settings"),
    ("/", "Write a prompt (focus the composer)"),
    ("Ctrl/⌘ Enter", "Send the prompt"),
    ("Ctrl/⌘ .", "Stop the running prompt"),
    ("?", "This list"),
    ("Esc", "Close the palette or this list"),
]

PAGES: list[tuple[str, str]] = [
    ("New session", "/"),
    ("Settings", "/settings"),
    ("Automations", "/automations"),
    ("Stats", "/stats"),
]

_TEMPLATE = """
(() => {
  if (window.__inspectKeys) return;
  window.__inspectKeys = true;
  const SHORTCUTS = __SHORTCUTS__, PAGES = __PAGES__;
  const el = (tag, style, text) => {
    const node = document.createElement(tag);
    if (style) node.style.cssText = style;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const typing = (t) => t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable);
  let overlay = null;
  const close = () => { if (overlay) { overlay.remove(); overlay = null; } };
  const frame = (id, label) => {
    close();
    overlay = el("div", "position:fixed;inset:0;background:rgba(0,0,0,.35);z-index:1000;display:flex;" +
      "justify-content:center;align-items:flex-start;padding-top:12vh");
    overlay.id = id;
    overlay.addEventListener("mousedown", (e) => { if (e.target === overlay) close(); });
    const box = el("div", "background:var(--color-panel-solid,#fff);color:var(--gray-12,#111);" +
      "width:min(34rem,92vw);border-radius:10px;box-shadow:0 12px 40px rgba(0,0,0,.3);padding:.6rem;" +
      "font:14px system-ui,sans-serif");
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", label);
    overlay.appendChild(box);
    document.body.appendChild(overlay);
    return box;
  };
  const help = () => {
    const box = frame("shortcut-help", "Keyboard shortcuts");
    box.appendChild(el("div", "font-weight:600;padding:.3rem .4rem .6rem", "Keyboard shortcuts"));
    for (const [keys, what] of SHORTCUTS) {
      const row = el("div", "display:flex;gap:1rem;padding:.3rem .4rem");
      row.appendChild(el("kbd", "min-width:7rem;font-family:monospace;color:var(--gray-11,#555)", keys));
      row.appendChild(el("span", "", what));
      box.appendChild(row);
    }
  };
  const palette = async () => {
    const box = frame("command-palette", "Command palette");
    const input = el("input", "width:100%;box-sizing:border-box;padding:.55rem .6rem;font-size:15px;" +
      "border:1px solid var(--gray-7,#ccc);border-radius:6px;background:transparent;color:inherit");
    input.id = "palette-input";
    input.placeholder = "Jump to a session, or a page…";
    input.setAttribute("aria-label", "Search");
    const list = el("div", "max-height:50vh;overflow:auto;margin-top:.4rem");
    list.id = "palette-results";
    box.append(input, list);
    input.focus();
    let entries = PAGES.map(([label, href]) => ({label, detail: "page", href}));
    let chosen = 0;
    const shown = () => {
      const words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
      return entries.filter((e) => words.every((w) => (e.label + " " + e.detail).toLowerCase().includes(w)))
        .slice(0, 30);
    };
    const render = () => {
      const found = shown();
      chosen = Math.min(chosen, Math.max(found.length - 1, 0));
      list.replaceChildren(...found.map((entry, i) => {
        const row = el("div", "display:flex;justify-content:space-between;gap:1rem;padding:.45rem .6rem;" +
          "border-radius:6px;cursor:pointer;" + (i === chosen ? "background:var(--accent-4,#e6e6ff)" : ""));
        row.className = "palette-entry";
        row.appendChild(el("span", "overflow:hidden;text-overflow:ellipsis;white-space:nowrap", entry.label));
        row.appendChild(el("span", "color:var(--gray-11,#666);font-size:12px;white-space:nowrap", entry.detail));
        row.addEventListener("click", () => go(entry));
        return row;
      }));
      if (!found.length) {
        list.appendChild(el("div", "padding:.5rem .6rem;color:var(--gray-11,#666)", "Nothing matches"));
      }
    };
    const go = (entry) => { close(); window.location.assign(entry.href); };
    input.addEventListener("input", () => { chosen = 0; render(); });
    input.addEventListener("keydown", (e) => {
      const found = shown();
      if (e.key === "ArrowDown") { chosen = Math.min(chosen + 1, found.length - 1); render(); e.preventDefault(); }
      else if (e.key === "ArrowUp") { chosen = Math.max(chosen - 1, 0); render(); e.preventDefault(); }
      else if (e.key === "Enter" && found[chosen]) { e.preventDefault(); go(found[chosen]); }
    });
    render();
    try {
      const answer = await fetch("/api/sessions?limit=50", {credentials: "same-origin"});
      if (!answer.ok) return;
      const sessions = (await answer.json()).sessions || [];
      const ids = /^[A-Za-z0-9_-]{1,64}$/;
      entries = [...entries, ...sessions.filter((s) => ids.test(String(s.id))).map((s) => ({
        label: String(s.title || "Untitled session"),
        detail: String(s.repository || "") + " · " + String(s.status || ""),
        href: "/sessions/" + s.id,
      }))];
      if (overlay && list.isConnected) render();
    } catch (e) { /* the pages are still there */ }
  };
  const press = (id) => {
    const button = document.getElementById(id);
    if (!button || button.disabled) return false;
    button.click();
    return true;
  };
  document.addEventListener("keydown", (e) => {
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === "k") {
      e.preventDefault();
      overlay && overlay.id === "command-palette" ? close() : palette();
      return;
    }
    if (e.key === "Escape" && overlay) { e.preventDefault(); close(); return; }
    if (mod && e.key === "Enter" && e.target && e.target.id === "composer") {
      // the composer's text reaches the app as it is left: leave it, then press Send
      e.preventDefault();
      e.target.blur();
      requestAnimationFrame(() => press("send-now"));
      return;
    }
    if (mod && e.key === ".") { if (press("stop")) e.preventDefault(); return; }
    if (typing(e.target) || mod || e.altKey) return;
    if (e.key === "?") { e.preventDefault(); overlay && overlay.id === "shortcut-help" ? close() : help(); }
    else if (e.key === "/") {
      const composer = document.getElementById("composer");
      if (composer) { e.preventDefault(); composer.focus(); }
    }
  });
})();
"""
SHOW_SHORTCUTS = "document.dispatchEvent(new KeyboardEvent('keydown', {key: '?'}))"  # the sidebar's button
SCRIPT = _TEMPLATE.replace("__SHORTCUTS__", json.dumps(SHORTCUTS)).replace("__PAGES__", json.dumps(PAGES))
