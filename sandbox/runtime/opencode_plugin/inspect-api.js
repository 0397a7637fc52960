// Inspect: how the agent's tools reach the control plane. They hold no credential of their own,
// only the sandbox's tool token (read from its file at each call: a pooled sandbox's token arrives
// when a session claims it), good for this session's own requests and nothing else.
import { readFile } from "node:fs/promises";

export async function inspectApi(method, path, body, timeoutMs = 60000) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return call(method, path, payload, "application/json", timeoutMs);
}

// Bytes as they are (a screenshot's PNG), not JSON.
export async function inspectUpload(path, bytes, contentType, timeoutMs = 60000) {
  return call("POST", path, bytes, contentType, timeoutMs);
}

async function call(method, path, payload, contentType, timeoutMs) {
  const api = process.env.INSPECT_API_URL;
  const file = process.env.INSPECT_TOOL_TOKEN_FILE;
  const token = file ? (await readFile(file, "utf8").catch(() => "")).trim() : "";
  if (!api || !token) throw new Error("This tool is not available in this sandbox.");
  const response = await fetch(`${api}${path}`, {
    method,
    headers: { "content-type": contentType, authorization: `Bearer ${token}` },
    body: payload,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(answer?.error?.message ?? `Inspect refused the request (HTTP ${response.status})`);
  }
  return answer;
}

// A child session as the agent reads it: one short block of text.
export function describeSession(s) {
  const lines = [`Session ${s.id} (${s.repository}): ${s.status}`, `Title: ${s.title}`, `Link: ${s.url}`];
  if (s.pr_url) lines.push(`Pull request: ${s.pr_url}`);
  if (s.answer) lines.push("", s.status === "done" ? "Its answer:" : "Why:", s.answer);
  return lines.join("\n");
}
