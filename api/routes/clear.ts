import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { BatonError } from "../../core/errors.ts";
import { TaskState } from "../../core/states.ts";
import { clearStateFilter } from "../../scheduler/clearSelection.ts";
import { getDag, getDagRun, listStartedRunsInRange, runNotFoundError } from "../../store/queries/read.ts";
import { clearTasks, type ClearResult } from "../../store/transitions/clearTasks.ts";
import { isoOrNull } from "../../store/rows.ts";
import { VersionCache } from "../../store/versions.ts";
import { dbFor, type ApiDeps } from "../context.ts";
import { NullableDateTime, Nullable } from "../openapi.ts";
import { DagParams, Id, instantOf } from "../schemas.ts";

/** A clear across runs (a date range, include_past / include_future) touches at most this many runs. */
export const MAX_CLEAR_RUNS = 1000;

/**
 * Airflow v1's ClearTaskInstances body, with Airflow's defaults (dry_run and only_failed
 * default to true). The runs: dag_run_id alone is that run; with include_past / include_future
 * also the DAG's runs with an earlier / later logical date; without dag_run_id, the runs whose
 * logical date is within [start_date, end_date] (each end open when absent). The task
 * instances: task_ids (every task when absent) with their upstream / downstream closure, in the
 * states only_failed / only_running select (every state when both are false). Subdags do not
 * exist in Baton, so include_subdags / include_parentdag are accepted and ignored.
 *
 * Baton refuses one case Airflow allows: every task instance (no task_ids, neither only flag) of
 * many runs. That resets up to MAX_CLEAR_RUNS runs' whole history (outputs and durable steps
 * deleted, nothing to undo) on a body as short as {"only_failed": false, "dry_run": false}; one
 * run at a time (dag_run_id alone) is allowed, and narrower clears across runs are too.
 */
export const ClearTaskInstancesBody = Type.Object(
  {
    dag_run_id: Type.Optional(Id),
    task_ids: Type.Optional(
      Type.Array(Id, {
        maxItems: 10_000,
        description:
          "default: every task; with neither only_failed nor only_running, every task instance of the run (refused across runs)",
      }),
    ),
    start_date: Type.Optional(Type.String({ format: "date-time", description: "earliest logical date, without dag_run_id" })),
    end_date: Type.Optional(Type.String({ format: "date-time", description: "latest logical date, without dag_run_id" })),
    dry_run: Type.Optional(Type.Boolean({ default: true })),
    only_failed: Type.Optional(Type.Boolean({ description: "default true, or false when only_running is true" })),
    only_running: Type.Optional(Type.Boolean({ default: false })),
    include_upstream: Type.Optional(Type.Boolean({ default: false })),
    include_downstream: Type.Optional(Type.Boolean({ default: false })),
    include_past: Type.Optional(Type.Boolean({ default: false })),
    include_future: Type.Optional(Type.Boolean({ default: false })),
    reset_dag_runs: Type.Optional(Type.Boolean({ default: true, description: "must be true: a run with cleared tasks always goes back to running" })),
    include_subdags: Type.Optional(Type.Boolean({ description: "ignored (no subdags in Baton)" })),
    include_parentdag: Type.Optional(Type.Boolean({ description: "ignored (no subdags in Baton)" })),
    /** Baton: re-run with the DAG's latest version (same tasks and edges) instead of the run's own. */
    use_latest_version: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);

const ClearedReference = Type.Object(
  {
    task_id: Type.String(),
    dag_id: Type.String(),
    dag_run_id: Type.String(),
    map_index: Type.Integer(),
    execution_date: NullableDateTime,
    state: Nullable(Type.String({ description: "the state it was (or on a dry run would be) cleared from; null for none" })),
    new_state: Nullable(
      Type.String({
        description:
          "Baton: the state the clear itself left it in, as its transaction committed (null for none: it waits for its upstream tasks; " +
          "queued: it runs at once; …), not a later read; on a dry run the same as state",
      }),
    ),
  },
  { additionalProperties: false },
);

export const clearRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, clock, onTasksQueued, onRunCreated }) => {
  const versions = new VersionCache(db.pool);
  const shapeOf = (hash: string) => versions.shape(hash);

  app.post(
    "/dags/:dag_id/clearTaskInstances",
    {
      schema: {
        operationId: "post_clear_task_instances",
        tags: ["DAG"],
        description:
          "Clears task instances so they run again (Airflow's clear); their runs go back to running. dry_run (default true) " +
          "only lists them. Give dag_run_id (with include_past / include_future for earlier / later runs) or a " +
          "start_date / end_date range of logical dates. Without task_ids and with only_failed and only_running false, every " +
          "task instance of dag_run_id is cleared; across runs that is refused (give task_ids or a state filter).",
        params: DagParams,
        body: ClearTaskInstancesBody,
        response: {
          200: Type.Object({ task_instances: Type.Array(ClearedReference), total_entries: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
        },
      },
    },
    async (req) => {
      const body = req.body;
      const dagId = req.params.dag_id;
      if (body.reset_dag_runs === false) {
        throw new BatonError("BATON_VALIDATION_FAILED", "body.reset_dag_runs must be true: a run with cleared tasks always goes back to running");
      }
      if (body.dag_run_id !== undefined && (body.start_date !== undefined || body.end_date !== undefined)) {
        throw new BatonError("BATON_VALIDATION_FAILED", "body.start_date and body.end_date select runs by date: give them or body.dag_run_id, not both");
      }
      const startDate = instantOf(body.start_date, "body.start_date");
      const endDate = instantOf(body.end_date, "body.end_date");
      if (startDate && endDate && startDate > endDate) throw new BatonError("BATON_VALIDATION_FAILED", "body.start_date is after body.end_date");
      const dryRun = body.dry_run ?? true;
      const onlyRunning = body.only_running ?? false;
      // Airflow's default is only_failed = true, which would make only_running alone select nothing.
      const onlyFailed = body.only_failed ?? !onlyRunning;
      const request = {
        dagId,
        includeUpstream: body.include_upstream ?? false,
        includeDownstream: body.include_downstream ?? false,
        onlyFailed,
        onlyRunning,
        useLatestVersion: body.use_latest_version ?? false,
      };
      const acrossRuns = body.dag_run_id === undefined || body.include_past || body.include_future;
      const states = onlyFailed || onlyRunning ? Object.values(TaskState).filter(clearStateFilter(onlyFailed, onlyRunning)) : undefined;
      /** The started runs in a range of logical dates, each with the named tasks its version has (none: left out). */
      const otherRuns = async (dag: string, range: { gte?: Date; lte?: Date }, except?: string) => {
        const runs = await listStartedRunsInRange(db.pool, dag, range, states, MAX_CLEAR_RUNS + 1);
        if (runs.length > MAX_CLEAR_RUNS) {
          throw new BatonError("BATON_VALIDATION_FAILED", `the clear would touch more than ${MAX_CLEAR_RUNS} runs; narrow start_date / end_date`);
        }
        const parts: { runId: string; taskIds?: string[] }[] = [];
        for (const run of runs) {
          if (run.run_id === except) continue;
          // Another version may lack some of the tasks: clear the ones it has.
          const shape = await shapeOf(run.version_hash);
          const taskIds = body.task_ids?.filter((id) => shape.byId.has(id));
          if (body.task_ids?.length && !taskIds?.length) continue;
          parts.push({ runId: run.run_id as string, taskIds });
        }
        return parts;
      };
      if (acrossRuns && !body.task_ids?.length && !onlyFailed && !onlyRunning) {
        throw new BatonError(
          "BATON_VALIDATION_FAILED",
          "without task_ids, only_failed or only_running a clear resets every task instance: Baton does that for one run " +
            "(body.dag_run_id without include_past / include_future), not across runs; give body.task_ids or a state filter",
        );
      }

      // Every run's part is planned, and checked, before any is cleared: each run clears in its
      // own transaction, so a refusal found at the third run would leave two cleared.
      const plan: { runId: string; taskIds?: string[] }[] = [];
      if (body.dag_run_id !== undefined) {
        // The named run first: unknown DAG, run or task ids are 404s here.
        const named = await getDagRun(db.pool, dagId, body.dag_run_id);
        if (!named) throw await runNotFoundError(db.pool, dagId, body.dag_run_id);
        plan.push({ runId: body.dag_run_id, taskIds: body.task_ids });
        if (acrossRuns) {
          const at = named.logical_date as Date | null;
          const range = at ? { gte: body.include_past ? undefined : at, lte: body.include_future ? undefined : at } : { gte: new Date(8.64e15) };
          plan.push(...(await otherRuns(dagId, range, body.dag_run_id)));
        }
      } else {
        if (!(await getDag(db.pool, dagId))) throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${dagId}" not found`);
        plan.push(...(await otherRuns(dagId, { gte: startDate, lte: endDate })));
      }
      const clearPart = (part: (typeof plan)[number], dry: boolean) =>
        clearTasks(dbFor(db, req), clock.now(), { ...request, dryRun: dry, runId: part.runId, taskIds: part.taskIds }, shapeOf);
      // The check is clearTasks' own, as a dry run (it locks and changes nothing): whatever it
      // refuses (a mixed saga clear, an incompatible latest version) refuses the whole clear.
      if (!dryRun && plan.length > 1) for (const part of plan) await clearPart(part, true);
      const results: ClearResult[] = [];
      for (const part of plan) results.push(await clearPart(part, dryRun));
      if (!dryRun && results.some((r) => r.cleared.length > 0)) (onTasksQueued ?? onRunCreated)?.();
      const taskInstances = results.flatMap((result) =>
        result.cleared.map((c) => ({
          task_id: c.taskId,
          dag_id: result.dagId,
          dag_run_id: result.runId,
          map_index: c.mapIndex,
          execution_date: isoOrNull(result.logicalDate),
          // The state the task instance was (or, on a dry run, would be) cleared from; Airflow's null for none.
          state: c.previousState === "none" ? null : c.previousState,
          new_state: c.state === "none" ? null : c.state,
        })),
      );
      return { task_instances: taskInstances, total_entries: taskInstances.length };
    },
  );
};
