import path from "node:path";

/**
 * The line of `file` in the first stack frame that points into it, or null. Frames look like
 * `at fn (/abs/file.ts:12:5)`, `at /abs/file.ts:12:5` or `at file:///abs/file.ts:12:5`;
 * `file` is compared as an absolute path.
 */
export function lineInFile(stack: string | undefined, file: string): number | null {
  for (const frame of (stack ?? "").split("\n")) {
    const match = frame.match(/\(?(?:file:\/\/)?([^()\s]+):(\d+):\d+\)?\s*$/);
    if (match && path.resolve(decodeURIComponent(match[1]!)) === file) return Number(match[2]);
  }
  return null;
}

/**
 * A stack without its header (`TypeError: message`, which may span lines): its frames, or null
 * when it has none. The import error's message is that header already, and the API shows
 * message then frames as stack_trace.
 */
export function stackFrames(stack: string | undefined): string | null {
  const at = (stack ?? "").search(/^\s+at /m);
  return at < 0 ? null : stack!.slice(at);
}
