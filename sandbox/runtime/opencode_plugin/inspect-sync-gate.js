// Inspect: the sandbox's own rules for the agent's tools, enforced before any tool runs.
// 1. File-changing tools wait until the sandbox's git sync has finished. Reads (read, grep, glob)
//    start at once; write/edit/patch and bash (which can write) wait for the marker file the
//    supervisor creates when the checkout is ready.
// 2. While a plan prompt runs (the agent writes INSPECT_PLAN_MARKER for it), the agent may look but
//    not touch: file-writing tools are refused, and so is every shell command that is not plainly a
//    read (readOnlyCommand) - the plan is enforced here, not only asked of the model.
import { existsSync } from "node:fs";

const MARKER = process.env.INSPECT_SYNC_MARKER;
const PLAN_MARKER = process.env.INSPECT_PLAN_MARKER;
const GATED = new Set(["write", "edit", "multiedit", "patch", "bash"]);
const WRITERS = new Set(["write", "edit", "multiedit", "patch", "todowrite"]);
const WAIT_MS = 300000;

// Programs that only read, and what would make them write.
const READERS = new Set([
  "cat", "cut", "diff", "du", "echo", "file", "find", "git", "grep", "head", "ls", "nl", "pwd",
  "rg", "sort", "stat", "tail", "tree", "wc", "which",
]);
// Options that write a file or run a program, whatever the program.
const WRITING_OPTIONS = /^(--output|--pre\b|--ext-diff|-O$)/;
const GIT_READS = new Set(["blame", "diff", "grep", "log", "ls-files", "rev-parse", "show", "status"]);
const FIND_WRITES = /(^|\s)-(exec|execdir|delete|ok|okdir|fprint|fprint0|fprintf|fls)\b/;

// Not exported: OpenCode calls every export of a plugin file as a plugin.
function readOnlyCommand(command) {
  // No redirection, substitution, background job or here-document anywhere (quoted or not:
  // refusing a harmless `grep ">"` is the price of not parsing shell); `&&` chains are fine.
  if (/[<>`]|\$\(|\n/.test(command) || /&/.test(command.replaceAll("&&", ""))) return false;
  for (const segment of command.split(/&&|\|\||\||;/)) {
    const words = segment.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) continue;
    const [program, ...args] = words;
    if (!READERS.has(program)) return false;
    if (args.some((a) => WRITING_OPTIONS.test(a))) return false;
    if (program === "git" && !GIT_READS.has(args.find((a) => !a.startsWith("-")) ?? "")) return false;
    if (program === "find" && FIND_WRITES.test(segment)) return false;
    if ((program === "sort" || program === "tree") && args.some((a) => /^-[a-zA-Z]*o/.test(a))) return false;
  }
  return true;
}

export const InspectSyncGate = async () => ({
  "tool.execute.before": async (input, output) => {
    if (PLAN_MARKER && existsSync(PLAN_MARKER)) {
      if (WRITERS.has(input.tool)) {
        throw new Error(`Plan mode: ${input.tool} is refused. Describe the change in your plan instead of making it.`);
      }
      if (input.tool === "bash" && !readOnlyCommand(String(output?.args?.command ?? ""))) {
        throw new Error(
          "Plan mode: only commands that read (ls, cat, grep, git log/diff/show ...) may run, without " +
            "redirection. Describe the change in your plan instead of making it.",
        );
      }
    }
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
