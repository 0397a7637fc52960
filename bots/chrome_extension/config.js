// Inspect: where the app lives (set on the options page; loopback by default).
export const DEFAULT_APP_URL = "http://127.0.0.1:3000";

export async function appUrl() {
  const { appUrl } = await chrome.storage.sync.get({ appUrl: DEFAULT_APP_URL });
  return appUrl.replace(/\/+$/, "");
}
