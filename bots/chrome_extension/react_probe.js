// Inspect: runs in the page's own JavaScript world (React's data is only visible there). When the
// picker asks, it walks the React fiber of the marked element up to the root and answers with the
// component names — and the source file/line where a React development build records them.
(() => {
  if (window.__inspectProbe) return;
  window.__inspectProbe = true;

  function fiberOf(element) {
    for (let node = element; node; node = node.parentElement) {
      const key = Object.keys(node).find((k) => k.startsWith("__reactFiber$") || k.startsWith("__reactInternalInstance$"));
      if (key) return node[key];
    }
    return null;
  }

  function nameOf(type) {
    if (!type || typeof type === "string") return null;
    return type.displayName || type.name || type.render?.displayName || type.render?.name || type.type?.name || null;
  }

  function chain(element) {
    const components = [];
    for (let fiber = fiberOf(element); fiber; fiber = fiber.return) {
      const name = nameOf(fiber.type);
      if (!name) continue;
      const source = fiber._debugSource
        ? { file: fiber._debugSource.fileName, line: fiber._debugSource.lineNumber }
        : null;
      components.push(source ? { name, source } : { name });
      if (components.length >= 40) break;
    }
    return components.length ? { components } : null;
  }

  document.addEventListener("inspect:react-ask", (event) => {
    const token = typeof event.detail === "string" ? event.detail : "";
    const element = token && document.querySelector(`[data-inspect-probe="${CSS.escape(token)}"]`);
    const info = element ? chain(element) : null;
    document.dispatchEvent(new CustomEvent("inspect:react-answer", { detail: JSON.stringify({ token, info }) }));
  });
})();
