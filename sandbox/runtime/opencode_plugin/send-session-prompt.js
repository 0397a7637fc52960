// Inspect: another prompt for a child session (queued after what it is doing).
import { tool } from "@opencode-ai/plugin";
import { describeSession, inspectApi } from "../inspect/inspect-api.js";

export default tool({
  description: "Send another prompt to a session this session started; it is queued after its current work.",
  args: {
    id: tool.schema.string().describe("The child session's id"),
    prompt: tool.schema.string().describe("What to do next"),
  },
  async execute(args) {
    const path = `/api/sandbox/sessions/${encodeURIComponent(args.id)}/prompts`;
    return describeSession(await inspectApi("POST", path, { prompt: args.prompt }));
  },
});
