import { appUrl } from "./config.js";

const input = document.getElementById("app-url");
const status = document.getElementById("status");
input.value = await appUrl();
document.getElementById("save").addEventListener("click", async () => {
  try {
    const url = new URL(input.value.trim());
    if (!/^https?:$/.test(url.protocol)) throw new Error("use an http(s) address");
    await chrome.storage.sync.set({ appUrl: url.origin + url.pathname.replace(/\/+$/, "") });
    status.textContent = "Saved";
  } catch (error) {
    status.textContent = `Not saved: ${error.message}`;
  }
});
