// Inspect: stop a child session's work (its running prompt and the queued ones).
import { tool } from "@opencode-ai/plugin";
import { describeSession, inspectApi } from "../inspect/inspect-api.js";

export default tool({
  description: "Stop a session this session started: its running prompt is stopped, its queued ones cancelled.",
  args: { id: tool.schema.string().describe("The child session's id") },
  async execute(args) {
    const path = `/api/sandbox/sessions/${encodeURIComponent(args.id)}/cancel`;
    return describeSession(await inspectApi("POST", path));
  },
});
