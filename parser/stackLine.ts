import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The line of `file` in the first stack frame that points into it, or null. Frames look like
 * `at fn (/abs/file.ts:12:5)`, `at /abs/file.ts:12:5` or `at file:///abs/file.ts:12:5`;
 * `file` is compared as an absolute path. A frame's location is read as the end of the frame,
 * not as a run of characters without spaces or parentheses: a path may hold both
 * ("/srv/my dags/etl (copy).ts").
 */
export function lineInFile(stack: string | undefined, file: string): number | null {
  const target = path.resolve(file);
  for (const frame of (stack ?? "").split("\n")) {
    const match = frame.match(/^\s*at (.*):(\d+):\d+\)?\s*$/);
    if (!match) continue;
    // What precedes the line: the location alone, or a function name and " (" before it.
    const where = match[1]!;
    if (where === target || where.endsWith(` (${target}`) || fileUrlPath(where) === target) return Number(match[2]);
  }
  return null;
}

/** The path of a frame's file URL (`at fn (file:///…` or `at file:///…`), whatever escapes it uses; null without one. */
function fileUrlPath(where: string): string | null {
  const at = where.lastIndexOf("file://");
  if (at < 0 || (at > 0 && !/[( ]$/.test(where.slice(0, at)))) return null;
  try {
    return fileURLToPath(where.slice(at));
  } catch {
    return null;
  }
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
