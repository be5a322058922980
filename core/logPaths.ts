import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "./logger.ts";

/** The longest file or folder name Linux and macOS take, in bytes (NAME_MAX). */
const NAME_MAX = 255;

/**
 * `<key>=<id>` as one path segment: no separators, no "..", and at most NAME_MAX bytes. An id may
 * be 250 characters, so `dag_id=` and `run_id=` with 249 or more and `task_id=` with 248 or more
 * would not fit (ENAMETOOLONG: the try's log was dropped); such an id keeps as much of its start
 * as fits, then `~` and a hash of the whole id (no id holds `~`, so none is mistaken for another).
 */
function segment(key: string, value: string): string {
  const name = `${key}=${value.replace(/[/\\\0]/g, "_").replace(/^\.+$/, "_")}`;
  if (Buffer.byteLength(name) <= NAME_MAX) return name;
  const hash = createHash("sha256").update(value).digest("hex").slice(0, 16);
  let kept = "";
  for (const ch of name) {
    if (Buffer.byteLength(kept + ch) > NAME_MAX - hash.length - 1) break;
    kept += ch;
  }
  return `${kept}~${hash}`;
}

/** logs/dag_id=…: every log of a DAG's runs. */
export function dagLogFolder(logsFolder: string, dagId: string): string {
  return path.join(logsFolder, segment("dag_id", dagId));
}

/**
 * logs/dag_id=…/run_id=…: every log of one run. Removed with the run (deleted or cleaned): a run
 * created later under the same run_id (a DAG deleted and parsed again repeats its scheduled
 * run ids) would otherwise read, and append to, the deleted run's files.
 */
export function runLogFolder(logsFolder: string, r: { dagId: string; runId: string }): string {
  return path.join(dagLogFolder(logsFolder, r.dagId), segment("run_id", r.runId));
}

/** logs/dag_id=…/run_id=…/task_id=…/attempt=N.log, as in Airflow; shared by workers and the API. */
export function taskLogPath(logsFolder: string, t: { dagId: string; runId: string; taskId: string; mapIndex?: number; tryNumber: number }): string {
  const parts = [segment("task_id", t.taskId)];
  if (t.mapIndex !== undefined && t.mapIndex >= 0) parts.push(`map_index=${t.mapIndex}`);
  return path.join(runLogFolder(logsFolder, t), ...parts, `attempt=${t.tryNumber}.log`);
}

/** logs/dag_id=…/run_id=…/dag_callbacks.log: output of the DAG's onSuccess / onFailure for that run. */
export function dagCallbackLogPath(logsFolder: string, r: { dagId: string; runId: string }): string {
  return path.join(runLogFolder(logsFolder, r), "dag_callbacks.log");
}

/**
 * Removes a log folder after its rows were deleted. The rows are what counts: a folder that
 * cannot be removed (permissions, another host's disk) is logged, never an error.
 */
export async function removeLogs(folder: string, logger: Pick<Logger, "warn">): Promise<void> {
  try {
    await rm(folder, { recursive: true, force: true });
  } catch (err) {
    logger.warn(`could not remove the log folder ${folder}: ${(err as Error).message}`);
  }
}
