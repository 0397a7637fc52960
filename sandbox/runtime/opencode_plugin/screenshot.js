// Inspect: the agent's screenshot tool. Headless Chromium in this sandbox takes the picture
// (sandbox/runtime/screenshot.py); the control plane keeps it as the session's evidence: shown in
// the timeline, embedded in the pull request, attached to Slack's answer.
import { tool } from "@opencode-ai/plugin";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspectApi, inspectUpload } from "../inspect/inspect-api.js";

function capture(argv, timeoutMs) {
  const python = process.env.INSPECT_RUNTIME_PYTHON || "python3";
  const env = { ...process.env, PYTHONPATH: process.env.INSPECT_RUNTIME_PATH || "" };
  return new Promise((resolve, reject) => {
    const child = spawn(python, ["-m", "sandbox.runtime.screenshot", ...argv], { env });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", () => {});
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (err) => reject(new Error(`cannot run the screenshot helper: ${err.message}`)));
    child.on("close", () => {
      clearTimeout(timer);
      const line = out.trim().split("\n").pop() || "{}";
      let answer;
      try {
        answer = JSON.parse(line);
      } catch {
        return reject(new Error("the screenshot helper said nothing useful"));
      }
      if (answer.error) return reject(new Error(answer.error));
      resolve(answer);
    });
  });
}

export default tool({
  description:
    "Take a screenshot of a web page (usually this sandbox's own dev server, e.g. http://127.0.0.1:5173/) " +
    "with a headless browser, and keep it as evidence for the people reviewing this session: it shows in the " +
    "session, and in the pull request you open. Use it before and after a visible change.",
  args: {
    url: tool.schema.string().describe("The page's address (http or https)"),
    caption: tool.schema.string().optional().describe("What the picture shows, e.g. 'Settings page after the fix'"),
    width: tool.schema.number().int().optional().describe("Viewport width in pixels (default 1280)"),
    height: tool.schema.number().int().optional().describe("Viewport height in pixels (default 800)"),
    full_page: tool.schema.boolean().optional().describe("The whole page, not just the viewport"),
    selector: tool.schema.string().optional().describe("A CSS selector: only that element"),
  },
  async execute(args) {
    const dir = await mkdtemp(join(tmpdir(), "shot-"));
    try {
      const out = join(dir, "shot.png");
      const argv = ["--url", args.url, "--out", out, "--timeout", "45"];
      if (args.width) argv.push("--width", String(args.width));
      if (args.height) argv.push("--height", String(args.height));
      if (args.full_page) argv.push("--full-page");
      if (args.selector) argv.push("--selector", args.selector);
      const shot = await capture(argv, 60000);
      const query = new URLSearchParams({
        caption: (args.caption || "").slice(0, 200),
        page: args.url.slice(0, 2000),
        width: String(shot.width || 0),
        height: String(shot.height || 0),
      });
      const kept = await inspectUpload(`/api/sandbox/screenshots?${query}`, await readFile(out), "image/png");
      return `Screenshot (${shot.width}x${shot.height}) kept: ${kept.url}`;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});
