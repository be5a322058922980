// baton db clean: deletes finished runs older than a date with everything that hangs off them
// (task instances, outputs, steps, reschedules, signals, event log rows), in small batches so
// no transaction holds locks for long. Running and queued runs are never touched.
import type { Db, RowDataPacket } from "./db.ts";
import { inList } from "./db.ts";

export interface CleanReport {
  runs: number;
  taskInstances: number;
  /** dag_id / run_id of each deleted run, to remove their log folders. */
  deleted: { dagId: string; runId: string }[];
}

export async function cleanBefore(db: Db, before: Date, options: { dryRun: boolean; batchSize?: number }): Promise<CleanReport> {
  const batch = Math.max(1, Math.floor(options.batchSize ?? 200));
  const report: CleanReport = { runs: 0, taskInstances: 0, deleted: [] };
  let afterId = 0;
  for (;;) {
    const [runs] = await db.pool.query<RowDataPacket[]>(
      `SELECT id, dag_id, run_id FROM dag_run
        WHERE id > ? AND state IN ('success', 'failed') AND COALESCE(end_date, queued_at) < ? ORDER BY id LIMIT ${batch}`,
      [afterId, before],
    );
    if (runs.length === 0) return report;
    afterId = Number(runs[runs.length - 1]!.id);
    const ids = runs.map((r) => Number(r.id));
    const [[count]] = await db.pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM task_instance WHERE dag_run_id IN (${inList(ids)})`, ids);
    report.runs += ids.length;
    report.taskInstances += Number(count!.n);
    report.deleted.push(...runs.map((r) => ({ dagId: r.dag_id as string, runId: r.run_id as string })));
    if (options.dryRun) continue;
    await db.tx(async (tx) => {
      // Re-checked under the lock: a run cleared back to running meanwhile stays.
      const [locked] = await tx.query<RowDataPacket[]>(
        `SELECT id FROM dag_run WHERE id IN (${inList(ids)}) AND state IN ('success', 'failed') FOR UPDATE`,
        ids,
      );
      const gone = locked.map((r) => Number(r.id));
      if (gone.length === 0) return;
      const list = inList(gone);
      await tx.query(`DELETE FROM task_step WHERE task_instance_id IN (SELECT id FROM task_instance WHERE dag_run_id IN (${list}))`, gone);
      await tx.query(`DELETE FROM task_reschedule WHERE task_instance_id IN (SELECT id FROM task_instance WHERE dag_run_id IN (${list}))`, gone);
      await tx.query(`DELETE s FROM task_log s JOIN task_instance ti ON ti.id = s.task_instance_id WHERE ti.dag_run_id IN (${list})`, gone);
      await tx.query(`DELETE s FROM task_callback s JOIN task_instance ti ON ti.id = s.task_instance_id WHERE ti.dag_run_id IN (${list})`, gone);
      for (const table of ["xcom", "run_signal", "event_log", "task_instance"]) {
        await tx.query(`DELETE FROM ${table} WHERE dag_run_id IN (${list})`, gone);
      }
      await tx.query(`DELETE FROM dag_run WHERE id IN (${list})`, gone);
    });
  }
}
