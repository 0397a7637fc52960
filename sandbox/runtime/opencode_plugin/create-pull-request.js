// Inspect: the agent's create-pull-request tool. The control plane pushes the session branch and
// opens (or updates) the pull request as the person who prompted; this tool holds no GitHub token,
// only the sandbox's tool token, which is good for this session's pushes and pull requests.
import { readFile } from "node:fs/promises";
import { tool } from "@opencode-ai/plugin";

const TIMEOUT_MS = 180000;

export default tool({
  description:
    "Push this session's branch and open a pull request for it, or update the one already opened. " +
    "Commit your changes first. Returns the pull request's URL (or the branch's, when no pull request can be opened).",
  args: {
    title: tool.schema.string().describe("Pull request title: what changes, in a short sentence"),
    body: tool.schema.string().optional().describe("Pull request description in Markdown: why and how"),
    draft: tool.schema.boolean().optional().describe("Open it as a draft"),
  },
  async execute(args) {
    const api = process.env.INSPECT_API_URL;
    // A file, read at each call: a pooled sandbox's token arrives when a session claims it.
    const file = process.env.INSPECT_TOOL_TOKEN_FILE;
    const token = file ? (await readFile(file, "utf8").catch(() => "")).trim() : "";
    if (!api || !token) return "Pull requests are not available in this sandbox.";
    const response = await fetch(`${api}/api/sandbox/pull-request`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ title: args.title, body: args.body ?? "", draft: args.draft ?? false }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(answer?.error?.message ?? `the pull request could not be opened (HTTP ${response.status})`);
    }
    return answer.message;
  },
});
