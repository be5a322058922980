// Backfills (Airflow 3's /backfills): create (or dry-run), list, show progress, pause, unpause,
// cancel. The runs themselves are created by the scheduler (advanceBackfills), not here.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { BatonError } from "../../core/errors.ts";
import { backfillProgress, getBackfill, listBackfills } from "../../store/queries/backfills.ts";
import { refuseUnknownDagFilter } from "../../store/queries/read.ts";
import { controlBackfill } from "../../store/transitions/controlBackfill.ts";
import { createBackfill, dryRunBackfill } from "../../store/transitions/createBackfill.ts";
import { isoOrNull, parseJsonText } from "../../store/rows.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { dbFor, type ApiDeps } from "../context.ts";
import { DateTime, FreeObject, ListOf, Nullable, NullableDateTime } from "../openapi.ts";
import { Id, PageQuery } from "../schemas.ts";

export const DEFAULT_BACKFILL_MAX_RUNS = 100_000;

// ISO 8601 ("2026-01-01", "2026-01-01T00:00:00Z"; without an offset, in the DAG's time zone),
// years 1000-9999 as a DATETIME holds them: "-271821-04-20T00:00:00Z" is a valid JavaScript date.
const DateText = Type.String({ minLength: 10, maxLength: 64, pattern: "^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}" });
const CreateBody = Type.Object(
  {
    dag_id: Id,
    from_date: DateText,
    to_date: DateText,
    reprocess_behavior: Type.Optional(Type.Union([Type.Literal("none"), Type.Literal("failed"), Type.Literal("completed")])),
    max_active_runs: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    run_backwards: Type.Optional(Type.Boolean()),
    dag_run_conf: Type.Optional(Type.Object({}, { additionalProperties: true })),
    dry_run: Type.Optional(Type.Boolean()),
    force: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
// The maximum matters: ajv counts 1e309 (Infinity) as an integer.
const IdParams = Type.Object({ backfill_id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) });
const CancelBody = Type.Object({ force: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
const TAGS = ["Backfill"];

const Count = Type.Integer({ minimum: 0 });
const ReprocessBehavior = Type.Union([Type.Literal("none"), Type.Literal("failed"), Type.Literal("completed")]);
const BackfillProps = {
  id: Type.Integer(),
  dag_id: Type.String(),
  from_date: DateTime,
  to_date: DateTime,
  reprocess_behavior: ReprocessBehavior,
  max_active_runs: Type.Integer(),
  run_backwards: Type.Boolean(),
  dag_run_conf: FreeObject,
  state: Type.Union([Type.Literal("running"), Type.Literal("paused"), Type.Literal("cancelling"), Type.Literal("cancelled"), Type.Literal("completed")]),
  is_paused: Type.Boolean(),
  total_dates: Count,
  created_at: DateTime,
  updated_at: DateTime,
  completed_at: NullableDateTime,
  waiting_reason: Type.Union([Type.Literal("dag_inactive"), Type.Null()], {
    description:
      "Baton: why a running or cancelling backfill makes no progress, null otherwise. dag_inactive: its DAG's file was removed or no longer " +
      "defines it, so no run of it is created or started (queued runs stay queued; running ones go on) until a file defines it again. " +
      "A paused DAG holds none: its backfills run",
  }),
  waiting_message: Nullable(Type.String({ description: "Baton: waiting_reason in a sentence, null when it is null" })),
};
const Backfill = Type.Object(BackfillProps, { additionalProperties: false });
const BackfillDetail = Type.Object(
  {
    ...BackfillProps,
    counts: Type.Object(
      { pending: Count, queued: Count, running: Count, success: Count, failed: Count, skipped: Count, deleted: Count },
      { additionalProperties: false, description: "dates by the state of their run; pending = no run yet; deleted = its run was deleted since (done)" },
    ),
    skipped_by_reason: Type.Record(Type.String(), Count, { description: "skipped dates by reason: exists, succeeded, in_flight, cancelled" }),
    done: Count,
    failed: Count,
    dates_left_total: Count,
    dates_left: Type.Array(DateTime, { description: "the next pending logical dates (at most 100)" }),
  },
  { additionalProperties: false },
);
/** The answer of pause / unpause / cancel: the backfill, plus what the request itself did. */
const BackfillActionAnswer = Type.Object(
  {
    ...BackfillDetail.properties,
    runs_failed: Type.Integer({
      minimum: 0,
      description:
        "Baton: how many of its queued and running runs this request failed, in its own transaction (cancel with force; 0 otherwise); " +
        "counts.failed also counts runs that failed before or since, by themselves or by a user",
    }),
  },
  { additionalProperties: false },
);
const BackfillPlan = Type.Object(
  {
    dry_run: Type.Literal(true),
    dag_id: Type.String(),
    from_date: DateTime,
    to_date: DateTime,
    total_dates: Count,
    dates: Type.Array(
      Type.Object(
        {
          logical_date: DateTime,
          data_interval_start: DateTime,
          data_interval_end: DateTime,
          action: Type.Union([Type.Literal("create"), Type.Literal("reprocess"), Type.Literal("skip")]),
          reason: Nullable(Type.String()),
          existing_runs: Type.Array(Type.String(), { description: "run ids that exist for the date, oldest first" }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, description: "dry_run: what a backfill would do, date by date; nothing is created" },
);

/** Why a running or cancelling backfill makes no progress: its DAG is inactive (advanceBackfills
 *  creates, and startRuns starts, no run of it meanwhile); null otherwise. */
function waiting(b: RowDataPacket): { waiting_reason: "dag_inactive" | null; waiting_message: string | null } {
  if ((b.state !== "running" && b.state !== "cancelling") || b.dag_is_active) return { waiting_reason: null, waiting_message: null };
  const why = `DAG "${b.dag_id}" is inactive (its file was removed or no longer defines it)`;
  return {
    waiting_reason: "dag_inactive",
    waiting_message:
      b.state === "running"
        ? `${why}: the backfill creates and starts no run until a file defines the DAG again (running runs go on); cancel it to give up`
        : `${why}: the backfill's queued runs start only once a file defines the DAG again, and it is cancelled when they end; cancel it with force to fail them now`,
  };
}

export function backfillJson(b: RowDataPacket) {
  return {
    id: Number(b.id),
    dag_id: b.dag_id,
    from_date: isoOrNull(b.from_date)!,
    to_date: isoOrNull(b.to_date)!,
    reprocess_behavior: b.reprocess_behavior as "none" | "failed" | "completed",
    max_active_runs: Number(b.max_active_runs),
    run_backwards: !!b.run_backwards,
    dag_run_conf: parseJsonText<Record<string, unknown>>(b.dag_run_conf, {}),
    state: b.state,
    is_paused: b.state === "paused",
    total_dates: Number(b.total_dates),
    created_at: isoOrNull(b.created_at)!,
    updated_at: isoOrNull(b.updated_at)!,
    completed_at: isoOrNull(b.completed_at),
    ...waiting(b),
  };
}

function notFound(id: number): never {
  throw new BatonError("BATON_BACKFILL_NOT_FOUND", `backfill ${id} not found`);
}

export const backfillRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, clock, config, onRunCreated }) => {
  const maxRuns = config.backfillMaxRuns ?? DEFAULT_BACKFILL_MAX_RUNS;

  const detail = async (id: number) => {
    const b = (await getBackfill(db.pool, id)) ?? notFound(id);
    const p = await backfillProgress(db.pool, id);
    const skipped = Object.values(p.skipped).reduce((a, b) => a + b, 0);
    return {
      ...backfillJson(b),
      counts: { pending: p.pending, ...p.runs, skipped, deleted: p.deleted },
      skipped_by_reason: p.skipped,
      done: p.runs.success + p.runs.failed + skipped + p.deleted,
      failed: p.runs.failed,
      dates_left_total: p.pending,
      dates_left: p.datesLeft.map((d) => d.toISOString()),
    };
  };

  app.post(
    "/backfills",
    { schema: { operationId: "create_backfill", tags: TAGS, body: CreateBody, response: { 200: Type.Union([BackfillDetail, BackfillPlan]) } } },
    async (req) => {
      const body = req.body;
      const request = {
        dagId: body.dag_id,
        fromDate: body.from_date,
        toDate: body.to_date,
        reprocessBehavior: body.reprocess_behavior ?? "none",
        maxActiveRuns: body.max_active_runs ?? 10,
        runBackwards: body.run_backwards ?? false,
        dagRunConf: (body.dag_run_conf ?? {}) as Record<string, unknown>,
        force: body.force ?? false,
      };
      if (body.dry_run) {
        const plan = await dryRunBackfill(db, clock.now(), request, maxRuns);
        return {
          dry_run: true as const,
          dag_id: body.dag_id,
          from_date: plan.from.toISOString(),
          to_date: plan.to.toISOString(),
          total_dates: plan.dates.length,
          dates: plan.dates.map((d) => ({
            logical_date: d.logicalDate.toISOString(),
            data_interval_start: d.dataIntervalStart.toISOString(),
            data_interval_end: d.dataIntervalEnd.toISOString(),
            action: d.decision.action,
            reason: d.decision.action === "skip" ? d.decision.reason : null,
            existing_runs: d.existingRuns,
          })),
        };
      }
      const { id } = await createBackfill(dbFor(db, req), clock.now(), request, maxRuns);
      onRunCreated?.();
      return detail(id);
    },
  );

  app.get(
    "/backfills",
    {
      schema: {
        operationId: "list_backfills",
        tags: TAGS,
        querystring: Type.Intersect([PageQuery, Type.Object({ dag_id: Type.Optional(Id) })]),
        response: { 200: ListOf("backfills", Backfill) },
      },
    },
    async (req) => {
      const { limit = 100, offset = 0, dag_id } = req.query;
      const { rows, total } = await listBackfills(db.pool, { limit, offset, dagId: dag_id });
      await refuseUnknownDagFilter(db.pool, dag_id, total);
      return { backfills: rows.map(backfillJson), total_entries: total };
    },
  );

  app.get("/backfills/:backfill_id", { schema: { operationId: "get_backfill", tags: TAGS, params: IdParams, response: { 200: BackfillDetail } } }, async (req) =>
    detail(req.params.backfill_id),
  );

  for (const action of ["pause", "unpause", "cancel"] as const) {
    app.post(
      `/backfills/:backfill_id/${action}`,
      {
        // No body, `null` and `{}` are the same request.
        schema: { operationId: `${action}_backfill`, tags: TAGS, params: IdParams, body: Type.Optional(Type.Union([CancelBody, Type.Null()])), response: { 200: BackfillActionAnswer } },
        preValidation: async (r) => {
          if (r.body === undefined || r.body === null) r.body = {};
        },
      },
      async (req) => {
        const force = action === "cancel" && !!(req.body as { force?: boolean } | undefined)?.force;
        if (action !== "cancel" && (req.body as { force?: boolean } | undefined)?.force !== undefined) {
          throw new BatonError("BATON_VALIDATION_FAILED", "body.force applies only to cancel");
        }
        const { runsFailed } = await controlBackfill(dbFor(db, req), clock.now(), req.params.backfill_id, action, { force });
        if (action === "unpause") onRunCreated?.();
        return { ...(await detail(req.params.backfill_id)), runs_failed: runsFailed };
      },
    );
  }
};
