import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { BatonError } from "../../core/errors.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { listDeadLetters, NOT_DEAD_LETTER_REASONS } from "../../store/queries/deadLetters.ts";
import { refuseUnknownDagFilter } from "../../store/queries/read.ts";
import { isoOrNull, parseJsonText } from "../../store/rows.ts";
import { REDRIVE_BATCH, redriveDeadLetters } from "../../store/transitions/redriveDeadLetters.ts";
import { VersionCache } from "../../store/versions.ts";
import { dbFor, type ApiDeps } from "../context.ts";
import { ListOf, Nullable, NullableDateTime } from "../openapi.ts";
import { Id, PageQuery } from "../schemas.ts";

const TAGS = ["DeadLetter"];

const DeadLetter = Type.Object(
  {
    task_instance_id: Type.Integer(),
    dag_id: Type.String(),
    dag_run_id: Type.String(),
    task_id: Type.String(),
    map_index: Type.Integer(),
    try_number: Type.Integer(),
    max_tries: Type.Integer(),
    failed_at: NullableDateTime,
    hostname: Nullable(Type.String()),
    error_class: Nullable(Type.String()),
    error_code: Nullable(Type.String()),
    error_message: Nullable(Type.String()),
    run_url: Type.String({ description: "the run's path in this API" }),
  },
  { additionalProperties: false },
);

const RedrivenLetter = Type.Object(
  {
    ...DeadLetter.properties,
    skipped: Type.Union([Type.Enum(["replaced", "compensating", "changed"]), Type.Null()], {
      description:
        "null: re-driven (or, on a dry run, would be). Else why not, decided under its run's lock by a re-drive by dag_id: " +
        "replaced, a backfill replaced its run since it was listed; compensating, its run's saga started since; changed, it was no longer failed (cleared or marked meanwhile)",
    }),
  },
  { additionalProperties: false },
);

/** A task instance a re-drive named by id that was no dead letter, and why. */
const NotDeadLetter = Type.Object(
  {
    task_instance_id: Type.Integer(),
    dag_id: Nullable(Type.String()),
    dag_run_id: Nullable(Type.String()),
    task_id: Nullable(Type.String()),
    state: Nullable(Type.String({ description: "its state as the re-drive read it" })),
    reason: Type.Enum([...NOT_DEAD_LETTER_REASONS], {
      description:
        "not_found: no task instance has this id (dag_id, dag_run_id, task_id and state null); other_dag: it is of another DAG than the body's dag_id; " +
        "not_failed: its state is not failed; failed_by_operator: a run cancel or a mark failed it (clear it to run it again); " +
        "compensating: its run's saga handles its failure; replaced: a backfill replaced its run; " +
        "changed: it failed after the re-drive read the dead letters (re-drive it again)",
    }),
  },
  { additionalProperties: false },
);

function deadLetterJson(r: RowDataPacket) {
  const error = parseJsonText<{ name?: string; code?: string; message?: string } | null>(r.error, null);
  return {
    task_instance_id: Number(r.id),
    dag_id: r.dag_id,
    dag_run_id: r.run_id,
    task_id: r.task_id,
    map_index: r.map_index,
    try_number: r.try_number,
    max_tries: r.max_tries,
    failed_at: isoOrNull(r.end_date),
    hostname: r.hostname ?? null,
    error_class: error?.name ?? null,
    error_code: error?.code ?? null,
    error_message: error?.message ?? null,
    run_url: `/api/v1/dags/${encodeURIComponent(r.dag_id)}/dagRuns/${encodeURIComponent(r.run_id)}`,
  };
}

export const deadLetterRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, clock, onTasksQueued }) => {
  const versions = new VersionCache(db.pool);

  app.get(
    "/deadLetters",
    {
      schema: {
        operationId: "get_dead_letters",
        tags: TAGS,
        querystring: Type.Intersect([PageQuery, Type.Object({ dag_id: Type.Optional(Id) })]),
        response: { 200: ListOf("dead_letters", DeadLetter) },
      },
    },
    async (req) => {
      const { limit = 100, offset = 0, dag_id } = req.query;
      const { rows, total } = await listDeadLetters(db.pool, { dagId: dag_id }, { limit, offset });
      await refuseUnknownDagFilter(db.pool, dag_id, total);
      return { dead_letters: rows.map(deadLetterJson), total_entries: total };
    },
  );

  // Re-drive = clear and re-run, run by run, with the run's pinned version (as a clear does).
  app.post(
    "/deadLetters/redrive",
    {
      schema: {
        operationId: "redrive_dead_letters",
        tags: TAGS,
        response: {
          200: Type.Object(
            {
              dead_letters: Type.Array(RedrivenLetter, { description: "the dead letters chosen (as listed before the re-drive), each with skipped" }),
              redriven: Type.Integer({ minimum: 0, description: "how many of them were (or, on a dry run, would be) cleared to run again: those whose skipped is null" }),
              dry_run: Type.Boolean(),
              remaining: Type.Integer({
                minimum: 0,
                description: `dead letters of the filter this call did not choose: one re-drive takes at most ${REDRIVE_BATCH.toLocaleString("en")} (the most recent); call again for the rest. 0 for a re-drive by task_instance_ids`,
              }),
              not_dead_letters: Type.Array(NotDeadLetter, {
                description: "the task_instance_ids named that were no dead letters (none chosen, nothing changed for them), in the order named, each with why; empty for a re-drive by dag_id alone",
              }),
            },
            { additionalProperties: false },
          ),
        },
        body: Type.Object(
          {
            task_instance_ids: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }), { minItems: 1, maxItems: 10_000 })),
            dag_id: Type.Optional(Id),
            dry_run: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      const { task_instance_ids: ids, dag_id, dry_run = false } = req.body;
      if (!ids && !dag_id) throw new BatonError("BATON_VALIDATION_FAILED", "body needs task_instance_ids or dag_id to choose what to re-drive");
      const { letters: rows, redriven, notDeadLetters, remaining } = await redriveDeadLetters(dbFor(db, req), clock.now(), { dagId: dag_id, ids }, dry_run, (h) => versions.shape(h));
      await refuseUnknownDagFilter(db.pool, dag_id, rows.length);
      if (!dry_run && redriven > 0) onTasksQueued?.();
      return {
        dead_letters: rows.map((r) => ({ ...deadLetterJson(r), skipped: r.skipped })),
        redriven,
        dry_run,
        remaining,
        not_dead_letters: notDeadLetters.map((n) => ({ task_instance_id: n.id, dag_id: n.dag_id, dag_run_id: n.run_id, task_id: n.task_id, state: n.state, reason: n.reason })),
      };
    },
  );
};
