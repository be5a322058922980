import { readFile } from "node:fs/promises";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { BatonError } from "../../core/errors.ts";
import { taskLogPath } from "../../core/logPaths.ts";
import type { Queryable } from "../../store/db.ts";
import { getDagRun, getTaskInstance, getXcom, listTaskInstances, listTaskReschedules } from "../../store/queries/read.ts";
import { isoOrNull, parseJsonText } from "../../store/rows.ts";
import type { ApiDeps } from "../context.ts";
import { PageQuery, RunParams, TaskParams } from "../schemas.ts";
import { taskInstanceJson } from "../serializers.ts";

async function runOr404(db: Queryable, dagId: string, runId: string) {
  const run = await getDagRun(db, dagId, runId);
  if (!run) throw new BatonError("BATON_DAG_RUN_NOT_FOUND", `DAG run "${runId}" of DAG "${dagId}" not found`);
  return run;
}

async function taskOr404(db: Queryable, p: { dag_id: string; dag_run_id: string; task_id: string }) {
  const run = await runOr404(db, p.dag_id, p.dag_run_id);
  const ti = await getTaskInstance(db, Number(run.id), p.task_id);
  if (!ti) throw new BatonError("BATON_TASK_NOT_FOUND", `task "${p.task_id}" not found in run "${p.dag_run_id}" of DAG "${p.dag_id}"`);
  return { run, ti };
}

export const taskInstanceRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, config }) => {
  const base = "/dags/:dag_id/dagRuns/:dag_run_id/taskInstances";

  app.get(base, { schema: { params: RunParams, querystring: PageQuery } }, async (req) => {
    const run = await runOr404(db.pool, req.params.dag_id, req.params.dag_run_id);
    const { limit = 100, offset = 0 } = req.query;
    const { rows, total } = await listTaskInstances(db.pool, Number(run.id), { limit, offset });
    return { task_instances: rows.map((r) => taskInstanceJson(r, run.logical_date)), total_entries: total };
  });

  app.get(`${base}/:task_id`, { schema: { params: TaskParams } }, async (req) => {
    const { run, ti } = await taskOr404(db.pool, req.params);
    return taskInstanceJson(ti, run.logical_date);
  });

  app.get(`${base}/:task_id/xcomEntries/:xcom_key`, { schema: { params: Type.Intersect([TaskParams, Type.Object({ xcom_key: Type.String({ minLength: 1, maxLength: 512 }) })]) } }, async (req) => {
    const { run } = await taskOr404(db.pool, req.params);
    const row = await getXcom(db.pool, Number(run.id), req.params.task_id, req.params.xcom_key);
    if (!row) throw new BatonError("BATON_XCOM_NOT_FOUND", `no XCom "${req.params.xcom_key}" for task "${req.params.task_id}"`);
    return {
      key: row.xcom_key,
      dag_id: req.params.dag_id,
      dag_run_id: req.params.dag_run_id,
      task_id: row.task_id,
      map_index: row.map_index,
      timestamp: isoOrNull(row.created_at),
      execution_date: isoOrNull(run.logical_date),
      value: parseJsonText(row.value, null),
    };
  });

  // Airflow's task_reschedule: every poke of a reschedule-mode sensor that did not succeed.
  app.get(`${base}/:task_id/reschedules`, { schema: { params: TaskParams, querystring: PageQuery } }, async (req) => {
    const { ti } = await taskOr404(db.pool, req.params);
    const { limit = 100, offset = 0 } = req.query;
    const { rows, total } = await listTaskReschedules(db.pool, Number(ti.id), { limit, offset });
    return {
      task_reschedules: rows.map((r) => ({
        try_number: r.try_number,
        start_date: isoOrNull(r.start_date),
        end_date: isoOrNull(r.end_date),
        reschedule_date: isoOrNull(r.reschedule_date),
      })),
      total_entries: total,
    };
  });

  app.get(
    `${base}/:task_id/logs/:try_number`,
    { schema: { params: Type.Intersect([TaskParams, Type.Object({ try_number: Type.Integer({ minimum: 1, maximum: 100_000 }) })]) } },
    async (req, reply) => {
      const { ti } = await taskOr404(db.pool, req.params);
      if (req.params.try_number > ti.try_number) {
        throw new BatonError("BATON_LOG_NOT_FOUND", `task "${ti.task_id}" has had ${ti.try_number} tries; there is no try ${req.params.try_number}`);
      }
      const file = taskLogPath(config.logsFolder, { dagId: ti.dag_id, runId: ti.run_id, taskId: ti.task_id, mapIndex: ti.map_index, tryNumber: req.params.try_number });
      let content: string;
      try {
        content = await readFile(file, "utf8");
      } catch {
        throw new BatonError("BATON_LOG_NOT_FOUND", `no log for try ${req.params.try_number} of task "${ti.task_id}" on this host`);
      }
      if ((req.headers.accept ?? "").includes("application/json")) return { content, continuation_token: null };
      return reply.type("text/plain; charset=utf-8").send(content);
    },
  );
};
