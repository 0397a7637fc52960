// Inspect: start a child session (another sandbox and agent) on a repository, with a prompt. It works
// in the background; follow it with session-status.
import { tool } from "@opencode-ai/plugin";
import { describeSession, inspectApi } from "../inspect/inspect-api.js";

export default tool({
  description:
    "Start another Inspect session (its own sandbox and agent) on a repository with a prompt, e.g. to " +
    "research another repository or to split a big task into small pull requests. It runs in the " +
    "background: check it with session-status. Child sessions cannot start sessions themselves.",
  args: {
    repository: tool.schema.string().describe("The repository, as Inspect names it (e.g. acme/widgets)"),
    prompt: tool.schema.string().describe("What the child session's agent should do"),
    branch: tool.schema.string().optional().describe("The branch to start from (default: the repository's)"),
    model: tool.schema.string().optional().describe("provider/model for the child (default: Inspect's)"),
    title: tool.schema.string().optional().describe("A short title for the session"),
  },
  async execute(args) {
    const body = { repository: args.repository, prompt: args.prompt, model: args.model ?? "", title: args.title ?? "" };
    if (args.branch) body.branch = args.branch;
    return describeSession(await inspectApi("POST", "/api/sandbox/sessions", body));
  },
});
