// Inspect's side panel: the app's /extension page in an iframe, plus the element picker's relay.
// Selections from the page's content script go into the iframe with postMessage, addressed to the
// app's origin only; messages from the iframe are accepted from that origin only.
import { appUrl } from "./config.js";

const base = await appUrl();
const appOrigin = new URL(base).origin;
const frame = document.getElementById("app");
const picked = document.getElementById("picked");
frame.src = `${base}/extension`;

async function startPicking() {
  const tabs = await chrome.tabs.query({ active: true, lastFocusedWindow: true });
  const tab = tabs.find((t) => /^https?:/.test(t.url || ""));
  if (!tab) {
    picked.textContent = "Open a web page to pick from.";
    return;
  }
  picked.textContent = "Click an element on the page (Esc cancels)…";
  chrome.tabs.sendMessage(tab.id, { type: "inspect-pick" }).catch(() => {
    picked.textContent = "Reload the page, then pick again.";
  });
}

document.getElementById("pick").addEventListener("click", startPicking);

chrome.runtime.onMessage.addListener((message) => {
  if (message?.type !== "inspect-selection") return;
  const selection = message.selection;
  picked.textContent = `Selected ${selection.selector}`;
  frame.contentWindow?.postMessage({ type: "inspect-selection", selection }, appOrigin);
});

window.addEventListener("message", (event) => {
  if (event.origin !== appOrigin || event.source !== frame.contentWindow) return;
  if (event.data?.type === "inspect-pick") startPicking();
});
