import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { BatonError } from "../../core/errors.ts";
import { clearTasks } from "../../store/transitions/clearTasks.ts";
import { isoOrNull } from "../../store/rows.ts";
import { VersionCache } from "../../store/versions.ts";
import type { ApiDeps } from "../context.ts";
import { DagParams } from "../schemas.ts";

const Id = Type.String({ minLength: 1, maxLength: 250 });

/**
 * Airflow v1's ClearTaskInstances body, with Airflow's defaults (dry_run and only_failed
 * default to true). Baton clears within one run, so dag_run_id is required; the cross-run
 * fields (start_date, end_date, include_past/future) and subdag fields are not accepted, except
 * the include_* flags as `false`, which Airflow clients often send.
 */
export const ClearTaskInstancesBody = Type.Object(
  {
    dag_run_id: Id,
    task_ids: Type.Optional(Type.Array(Id, { maxItems: 10_000 })),
    dry_run: Type.Optional(Type.Boolean({ default: true })),
    only_failed: Type.Optional(Type.Boolean({ description: "default true, or false when only_running is true" })),
    only_running: Type.Optional(Type.Boolean({ default: false })),
    include_upstream: Type.Optional(Type.Boolean({ default: false })),
    include_downstream: Type.Optional(Type.Boolean({ default: false })),
    reset_dag_runs: Type.Optional(Type.Boolean({ default: true })),
    include_subdags: Type.Optional(Type.Boolean()),
    include_parentdag: Type.Optional(Type.Boolean()),
    include_past: Type.Optional(Type.Boolean()),
    include_future: Type.Optional(Type.Boolean()),
    /** Baton: re-run with the DAG's latest version (same tasks and edges) instead of the run's own. */
    use_latest_version: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);

const UNSUPPORTED_FLAGS = ["include_subdags", "include_parentdag", "include_past", "include_future"] as const;

export const clearRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, clock, onTasksQueued, onRunCreated }) => {
  const versions = new VersionCache(db.pool);

  app.post("/dags/:dag_id/clearTaskInstances", { schema: { params: DagParams, body: ClearTaskInstancesBody } }, async (req) => {
    const body = req.body;
    for (const flag of UNSUPPORTED_FLAGS) {
      if (body[flag]) throw new BatonError("BATON_VALIDATION_FAILED", `body.${flag} is not supported: Baton clears task instances of one run (dag_run_id)`);
    }
    if (body.reset_dag_runs === false) {
      throw new BatonError("BATON_VALIDATION_FAILED", "body.reset_dag_runs must be true: a run with cleared tasks always goes back to running");
    }
    const dryRun = body.dry_run ?? true;
    const onlyRunning = body.only_running ?? false;
    const result = await clearTasks(
      db,
      clock.now(),
      {
        dagId: req.params.dag_id,
        runId: body.dag_run_id,
        taskIds: body.task_ids,
        includeUpstream: body.include_upstream ?? false,
        includeDownstream: body.include_downstream ?? false,
        // Airflow's default is only_failed = true, which would make only_running alone select nothing.
        onlyFailed: body.only_failed ?? !onlyRunning,
        onlyRunning,
        dryRun,
        useLatestVersion: body.use_latest_version ?? false,
      },
      (hash) => versions.shape(hash),
    );
    if (!dryRun && result.cleared.length > 0) (onTasksQueued ?? onRunCreated)?.();
    const executionDate = isoOrNull(result.logicalDate);
    return {
      task_instances: result.cleared.map((c) => ({
        task_id: c.taskId,
        dag_id: result.dagId,
        dag_run_id: result.runId,
        map_index: c.mapIndex,
        execution_date: executionDate,
        // The state the task instance was (or, on a dry run, would be) cleared from; Airflow's null for none.
        state: c.previousState === "none" ? null : c.previousState,
      })),
      total_entries: result.cleared.length,
    };
  });
};
