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
