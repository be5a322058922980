import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { BatonError } from "../../core/errors.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { listDeadLetters } from "../../store/queries/deadLetters.ts";
import { isoOrNull, parseJsonText } from "../../store/rows.ts";
import { redriveDeadLetters } from "../../store/transitions/redriveDeadLetters.ts";
import { VersionCache } from "../../store/versions.ts";
import type { ApiDeps } from "../context.ts";
import { PageQuery } from "../schemas.ts";

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

  app.get("/deadLetters", { schema: { querystring: Type.Intersect([PageQuery, Type.Object({ dag_id: Type.Optional(Type.String({ minLength: 1, maxLength: 250 })) })]) } }, async (req) => {
    const { limit = 100, offset = 0, dag_id } = req.query;
    const { rows, total } = await listDeadLetters(db.pool, { dagId: dag_id }, { limit, offset });
    return { dead_letters: rows.map(deadLetterJson), total_entries: total };
  });

  // Re-drive = clear and re-run, run by run, with the run's pinned version (as a clear does).
  app.post(
    "/deadLetters/redrive",
    {
      schema: {
        body: Type.Object(
          {
            task_instance_ids: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 10_000 })),
            dag_id: Type.Optional(Type.String({ minLength: 1, maxLength: 250 })),
            dry_run: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      const { task_instance_ids: ids, dag_id, dry_run = false } = req.body;
      if (!ids && !dag_id) throw new BatonError("BATON_VALIDATION_FAILED", "body needs task_instance_ids or dag_id to choose what to re-drive");
      const { letters: rows, redriven } = await redriveDeadLetters(db, clock.now(), { dagId: dag_id, ids }, dry_run, (h) => versions.shape(h));
      if (!dry_run && redriven > 0) onTasksQueued?.();
      return { dead_letters: rows.map(deadLetterJson), redriven, dry_run };
    },
  );
};
