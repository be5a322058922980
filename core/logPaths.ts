import path from "node:path";

/** Keeps an id usable as one path segment: no separators, no "..". */
function segment(value: string): string {
  return value.replace(/[/\\\0]/g, "_").replace(/^\.+$/, "_");
}

/** logs/dag_id=…/run_id=…/task_id=…/attempt=N.log, as in Airflow; shared by workers and the API. */
export function taskLogPath(logsFolder: string, t: { dagId: string; runId: string; taskId: string; mapIndex?: number; tryNumber: number }): string {
  const parts = [`dag_id=${segment(t.dagId)}`, `run_id=${segment(t.runId)}`, `task_id=${segment(t.taskId)}`];
  if (t.mapIndex !== undefined && t.mapIndex >= 0) parts.push(`map_index=${t.mapIndex}`);
  return path.join(logsFolder, ...parts, `attempt=${t.tryNumber}.log`);
}

/** logs/dag_id=…/run_id=…/dag_callbacks.log: output of the DAG's onSuccess / onFailure for that run. */
export function dagCallbackLogPath(logsFolder: string, r: { dagId: string; runId: string }): string {
  return path.join(logsFolder, `dag_id=${segment(r.dagId)}`, `run_id=${segment(r.runId)}`, "dag_callbacks.log");
}
