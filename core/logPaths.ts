import { rm } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "./logger.ts";

/** Keeps an id usable as one path segment: no separators, no "..". */
function segment(value: string): string {
  return value.replace(/[/\\\0]/g, "_").replace(/^\.+$/, "_");
}

/** logs/dag_id=…: every log of a DAG's runs. */
export function dagLogFolder(logsFolder: string, dagId: string): string {
  return path.join(logsFolder, `dag_id=${segment(dagId)}`);
}

/**
 * logs/dag_id=…/run_id=…: every log of one run. Removed with the run (deleted or cleaned): a run
 * created later under the same run_id (a DAG deleted and parsed again repeats its scheduled
 * run ids) would otherwise read, and append to, the deleted run's files.
 */
export function runLogFolder(logsFolder: string, r: { dagId: string; runId: string }): string {
  return path.join(dagLogFolder(logsFolder, r.dagId), `run_id=${segment(r.runId)}`);
}

/** logs/dag_id=…/run_id=…/task_id=…/attempt=N.log, as in Airflow; shared by workers and the API. */
export function taskLogPath(logsFolder: string, t: { dagId: string; runId: string; taskId: string; mapIndex?: number; tryNumber: number }): string {
  const parts = [`task_id=${segment(t.taskId)}`];
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
