// Inspect: how a child session is doing, and its answer once done.
import { tool } from "@opencode-ai/plugin";
import { describeSession, inspectApi } from "../inspect/inspect-api.js";

export default tool({
  description:
    "The status of a session this session started (working, done, failed, stopped), its pull request, " +
    "and its answer once it is done.",
  args: { id: tool.schema.string().describe("The child session's id (spawn-session gave it)") },
  async execute(args) {
    return describeSession(await inspectApi("GET", `/api/sandbox/sessions/${encodeURIComponent(args.id)}`));
  },
});
