// Inspect's element picker (content script): hover highlights, click selects, Esc cancels.
// The selection — page URL and title, a CSS selector, the element's trimmed outer HTML, its text,
// its box and, on React pages, the component names up to the root — goes to the side panel.
// React's data lives in the page's own JavaScript world, which a content script cannot read:
// react_probe.js (running in that world) answers with the component chain for the picked element.
(() => {
  if (window.__inspectPicker) return;
  window.__inspectPicker = true;

  const MAX_HTML = 4000;
  const MAX_TEXT = 1000;
  let active = false;
  let box = null;

  function overlay() {
    if (box) return box;
    box = document.createElement("div");
    box.id = "__inspect_highlight";
    Object.assign(box.style, {
      position: "fixed", pointerEvents: "none", zIndex: 2147483647, border: "2px solid #6e56cf",
      background: "rgba(110,86,207,.12)", borderRadius: "3px", display: "none",
    });
    document.documentElement.appendChild(box);
    return box;
  }

  function cssPath(element) {
    if (element.id) return `#${CSS.escape(element.id)}`;
    const parts = [];
    for (let node = element; node && node.nodeType === 1 && node !== document.documentElement; node = node.parentElement) {
      if (node.id) { parts.unshift(`#${CSS.escape(node.id)}`); break; }
      let part = node.localName;
      const siblings = node.parentElement ? [...node.parentElement.children].filter((s) => s.localName === node.localName) : [];
      if (siblings.length > 1) part += `:nth-of-type(${siblings.indexOf(node) + 1})`;
      parts.unshift(part);
    }
    return parts.join(" > ");
  }

  function reactChain(element) {
    return new Promise((resolve) => {
      const token = Math.random().toString(36).slice(2);
      // details cross between the two JavaScript worlds as strings
      const done = (event) => {
        const answer = typeof event.detail === "string" ? JSON.parse(event.detail) : null;
        if (answer?.token !== token) return;
        document.removeEventListener("inspect:react-answer", done);
        resolve(answer.info);
      };
      document.addEventListener("inspect:react-answer", done);
      element.setAttribute("data-inspect-probe", token);
      document.dispatchEvent(new CustomEvent("inspect:react-ask", { detail: token }));
      setTimeout(() => { element.removeAttribute("data-inspect-probe"); resolve(null); }, 500);
    });
  }

  async function capture(element) {
    const rect = element.getBoundingClientRect();
    const html = element.outerHTML;
    const react = await reactChain(element);
    element.removeAttribute("data-inspect-probe");
    return {
      url: location.href,
      title: document.title,
      selector: cssPath(element),
      html: html.length > MAX_HTML ? `${html.slice(0, MAX_HTML)}…` : html,
      text: (element.innerText || element.textContent || "").trim().replace(/\s+/g, " ").slice(0, MAX_TEXT),
      box: { x: Math.round(rect.x), y: Math.round(rect.y), width: Math.round(rect.width), height: Math.round(rect.height) },
      react,
    };
  }

  function onMove(event) {
    const rect = event.target.getBoundingClientRect();
    Object.assign(overlay().style, {
      display: "block", left: `${rect.x}px`, top: `${rect.y}px`, width: `${rect.width}px`, height: `${rect.height}px`,
    });
  }

  async function onClick(event) {
    event.preventDefault();
    event.stopPropagation();
    stop();
    const selection = await capture(event.target);
    chrome.runtime.sendMessage({ type: "inspect-selection", selection });
  }

  function onKey(event) {
    if (event.key === "Escape") stop();
  }

  function start() {
    if (active) return;
    active = true;
    document.addEventListener("mousemove", onMove, true);
    document.addEventListener("click", onClick, true);
    document.addEventListener("keydown", onKey, true);
  }

  function stop() {
    active = false;
    document.removeEventListener("mousemove", onMove, true);
    document.removeEventListener("click", onClick, true);
    document.removeEventListener("keydown", onKey, true);
    if (box) box.style.display = "none";
  }

  chrome.runtime.onMessage.addListener((message) => {
    if (message?.type === "inspect-pick") start();
  });
  document.addEventListener("keydown", (event) => {
    if (event.altKey && event.shiftKey && event.code === "KeyE") start();
  }, true);
})();
