import type { Queryable, RowDataPacket, Statement } from "./db.ts";
import { parseJsonText } from "./rows.ts";

export interface WantedOutputs {
  dagRunId: number;
  taskIds: readonly string[];
  /** How many tasks the run's DAG has: a wide fan-in is read by range only when it is most of them. */
  runTasks: number;
}

/**
 * A task with more direct upstream tasks than this, that are at least half of its run's tasks,
 * reads its run's return values whole and keeps those it wants: a 10,000-wide join's IN list
 * (10,000 parameters, as many index probes) made the transaction that claims it take ≈ 40 ms
 * longer than one range scan of the run's XComs. A narrower share keeps the IN list, so a join
 * never reads the (up to 1 MiB) values of many tasks it does not depend on.
 */
export const WIDE_FAN_IN = 64;

function readsWholeRun(w: WantedOutputs): boolean {
  return w.taskIds.length > WIDE_FAN_IN && w.taskIds.length * 2 >= w.runTasks;
}

/** One statement reading the return_value XComs of the given tasks, per run; null when none are wanted. */
export function upstreamOutputsStatement(wanted: readonly WantedOutputs[]): Statement | null {
  const clauses: string[] = [];
  const params: unknown[] = [];
  for (const w of wanted) {
    if (w.taskIds.length === 0) continue;
    if (readsWholeRun(w)) {
      clauses.push("(dag_run_id = ?)");
      params.push(w.dagRunId);
    } else {
      clauses.push(`(dag_run_id = ? AND task_id IN (${w.taskIds.map(() => "?").join(", ")}))`);
      params.push(w.dagRunId, ...w.taskIds);
    }
  }
  if (clauses.length === 0) return null;
  return {
    sql: `SELECT dag_run_id, task_id, value FROM xcom WHERE map_index = -1 AND xcom_key = 'return_value' AND (${clauses.join(" OR ")})`,
    params,
  };
}

/** The rows of upstreamOutputsStatement() as outputs by task id, per run (only the tasks wanted). */
export function outputsByRun(wanted: readonly WantedOutputs[], rows: readonly RowDataPacket[]): Map<number, Record<string, unknown>> {
  const result = new Map<number, Record<string, unknown>>();
  const wantedIds = new Map<number, Set<string>>();
  for (const w of wanted) {
    // No prototype: an upstream task named "__proto__" is an own key like any other (assigned to a
    // plain object it would set the prototype, and ctx.get would read undefined).
    result.set(w.dagRunId, result.get(w.dagRunId) ?? (Object.create(null) as Record<string, unknown>));
    const ids = wantedIds.get(w.dagRunId) ?? new Set<string>();
    for (const id of w.taskIds) ids.add(id);
    wantedIds.set(w.dagRunId, ids);
  }
  for (const r of rows) {
    const runId = Number(r.dag_run_id);
    if (wantedIds.get(runId)?.has(r.task_id)) result.get(runId)![r.task_id] = parseJsonText(r.value, null);
  }
  return result;
}

/** return_value XComs of the given tasks, per run: one statement for a whole claim batch. */
export async function upstreamOutputs(db: Queryable, wanted: readonly WantedOutputs[]): Promise<Map<number, Record<string, unknown>>> {
  const statement = upstreamOutputsStatement(wanted);
  if (!statement) return outputsByRun(wanted, []);
  const [rows] = await db.query<RowDataPacket[]>(statement.sql, statement.params);
  return outputsByRun(wanted, rows);
}
