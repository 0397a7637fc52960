// Inspect: file-changing tools wait until the sandbox's git sync has finished.
// Reads (read, grep, glob) start at once; write/edit/patch and bash (which can write) wait for the
// marker file the supervisor creates when the checkout is ready.
import { existsSync } from "node:fs";

const MARKER = process.env.INSPECT_SYNC_MARKER;
const GATED = new Set(["write", "edit", "multiedit", "patch", "bash"]);
const WAIT_MS = 300000;

export const InspectSyncGate = async () => ({
  "tool.execute.before": async (input) => {
    if (!MARKER || !GATED.has(input.tool)) return;
    const deadline = Date.now() + WAIT_MS;
    while (!existsSync(MARKER)) {
      if (Date.now() > deadline) {
        throw new Error("The repository is still being synced; file changes are blocked until it finishes.");
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  },
});
