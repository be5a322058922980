import { Type } from "typebox";

/** Airflow's list paging: limit (default 100, max 1000) and offset. */
export const PageQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, default: 0 })),
});

/** Keyset paging beside limit/offset (dag run and task instance lists). */
export const CursorQuery = Type.Object({
  cursor: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 1024,
      description:
        "The next_cursor of the previous page: this page starts right after its last row, at the cost of the first page however deep. " +
        "Keep order_by and the filters; leave offset out. total_entries is then the one of the page the walk started from, not counted again.",
    }),
  ),
});

/**
 * An identifier as Baton stores them (DAG, run and task ids, variable keys). MySQL compares
 * utf8mb4_bin with PAD SPACE: "a " finds "a". No stored id ends with a space, so one that does
 * is refused instead of answering for another (a DELETE of "key " deleted "key").
 */
export const NO_TRAILING_SPACE = "[^ ]$";
export const Id = Type.String({ minLength: 1, maxLength: 250, pattern: NO_TRAILING_SPACE });
export const DagParams = Type.Object({ dag_id: Id });
export const RunParams = Type.Object({ dag_id: Id, dag_run_id: Id });
export const TaskParams = Type.Object({ dag_id: Id, dag_run_id: Id, task_id: Id });

export const TriggerBody = Type.Object(
  {
    dag_run_id: Type.Optional(Type.String({ minLength: 1, maxLength: 250, pattern: "^[A-Za-z0-9_.:+\\-]+$" })),
    logical_date: Type.Optional(Type.String({ format: "date-time" })),
    execution_date: Type.Optional(
      Type.String({ format: "date-time", deprecated: true, description: "Airflow 2's name of logical_date (deprecated); if both are given they must be the same instant." }),
    ),
    conf: Type.Optional(Type.Object({}, { additionalProperties: true })),
    note: Type.Optional(Type.String({ maxLength: 10_000 })),
  },
  { additionalProperties: false },
);

export const PatchDagBody = Type.Object({ is_paused: Type.Boolean() }, { additionalProperties: false });
