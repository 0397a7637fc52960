// Inspect: the agent's create-pull-request tool. The control plane pushes the session branch and
// opens (or updates) the pull request as the person who prompted; this tool holds no GitHub token.
import { tool } from "@opencode-ai/plugin";
import { inspectApi } from "../inspect/inspect-api.js";

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
    const body = { title: args.title, body: args.body ?? "", draft: args.draft ?? false };
    const answer = await inspectApi("POST", "/api/sandbox/pull-request", body, 180000);
    return answer.message;
  },
});
