// Rows to Airflow v1 shaped JSON (snake_case, ISO dates, Airflow's null for "none").
import { Type, type Static } from "typebox";
import type { SerializedDag, SerializedTask } from "../core/dagStructure.ts";
import { currentTryEnded } from "../core/states.ts";
import { FreeObject, Nullable, NullableDateTime } from "./openapi.ts";
import type { RowDataPacket } from "../store/db.ts";
import type { TaskInstanceSchema } from "./routes/taskInstances.ts";
import { isoOrNull, parseJsonText } from "../store/rows.ts";

const iso = (v: unknown) => isoOrNull(v as Date | string | null);

const DateTime = NullableDateTime;
const Free = FreeObject;

/** Airflow's DAG object (GET /dags, /dags/{dag_id}). */
export const DagSchema = Type.Object({
  dag_id: Type.String(),
  is_paused: Type.Boolean(),
  is_active: Type.Boolean(),
  fileloc: Type.String(),
  description: Nullable(Type.String()),
  owners: Type.Array(Type.String()),
  tags: Type.Array(Type.Object({ name: Type.String() })),
  schedule_interval: Nullable(Type.Object({ __type: Type.String(), value: Type.String() })),
  timezone: Type.String(),
  max_active_runs: Type.Integer(),
  max_active_tasks: Type.Integer(),
  has_import_errors: Type.Boolean(),
  last_parsed_time: DateTime,
  next_dagrun: DateTime,
  next_dagrun_data_interval_start: DateTime,
  next_dagrun_data_interval_end: DateTime,
  next_dagrun_create_after: DateTime,
  latest_version: Nullable(Type.String({ description: "Hash of the DAG version new runs get." })),
});

export function dagJson(r: RowDataPacket): Static<typeof DagSchema> {
  return {
    dag_id: r.dag_id,
    is_paused: !!r.is_paused,
    is_active: !!r.is_active,
    fileloc: r.fileloc,
    description: r.description ?? null,
    owners: r.owners ? [r.owners] : [],
    tags: parseJsonText<string[]>(r.tags, []).map((name) => ({ name })),
    schedule_interval: r.schedule ? { __type: "CronExpression", value: r.schedule } : null,
    timezone: r.timezone,
    max_active_runs: r.max_active_runs,
    max_active_tasks: r.max_active_tasks,
    has_import_errors: !!r.has_import_errors,
    last_parsed_time: iso(r.last_parsed_at),
    next_dagrun: iso(r.next_dagrun),
    next_dagrun_data_interval_start: iso(r.next_dagrun_data_interval_start),
    next_dagrun_data_interval_end: iso(r.next_dagrun_data_interval_end),
    next_dagrun_create_after: iso(r.next_dagrun_create_after),
    latest_version: r.latest_version_hash,
  };
}

/** Airflow's DAGRun object, plus Baton's queued_at, dag_version and saga compensation. */
export const DagRunSchema = Type.Object({
  dag_run_id: Type.String(),
  dag_id: Type.String(),
  logical_date: DateTime,
  execution_date: DateTime,
  data_interval_start: DateTime,
  data_interval_end: DateTime,
  queued_at: DateTime,
  start_date: DateTime,
  end_date: DateTime,
  run_type: Type.String(),
  state: Type.String(),
  external_trigger: Type.Boolean(),
  conf: Free,
  note: Nullable(Type.String()),
  dag_version: Type.String({ description: "The DAG version this run is pinned to." }),
  compensation: Nullable(Type.String({ description: 'Saga compensation: null, "running", "compensated" or "compensation_failed".' })),
  compensated: Type.Boolean(),
});

export function dagRunJson(r: RowDataPacket): Static<typeof DagRunSchema> {
  return {
    dag_run_id: r.run_id,
    dag_id: r.dag_id,
    logical_date: iso(r.logical_date),
    execution_date: iso(r.logical_date),
    data_interval_start: iso(r.data_interval_start),
    data_interval_end: iso(r.data_interval_end),
    queued_at: iso(r.queued_at),
    start_date: iso(r.start_date),
    end_date: iso(r.end_date),
    run_type: r.run_type,
    state: r.state,
    external_trigger: !!r.external_trigger,
    conf: parseJsonText<Record<string, unknown>>(r.conf, {}),
    note: r.note ?? null,
    dag_version: r.version_hash,
    // Saga compensation: null, "running", "compensated" or "compensation_failed".
    compensation: r.compensation ?? null,
    compensated: r.compensation === "compensated",
  };
}

/** Airflow's TimeDelta object, or null for "no limit". */
const TimeDeltaSchema = Nullable(
  Type.Object({ __type: Type.Literal("TimeDelta"), days: Type.Integer(), seconds: Type.Integer(), microseconds: Type.Integer() }),
);

function timeDelta(ms: number | null | undefined): Static<typeof TimeDeltaSchema> {
  if (ms === null || ms === undefined) return null;
  const micros = Math.round(ms * 1000);
  const days = Math.floor(micros / 86_400_000_000);
  const rest = micros - days * 86_400_000_000;
  return { __type: "TimeDelta", days, seconds: Math.floor(rest / 1_000_000), microseconds: rest % 1_000_000 };
}

/** An ISO date from the structure's date text, or null. */
function isoText(value: string | null | undefined): string | null {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** Airflow's DAGDetail: the DAG plus what its latest version declares. */
export const DagDetailSchema = Type.Intersect([
  DagSchema,
  Type.Object({
    catchup: Type.Boolean(),
    start_date: DateTime,
    end_date: DateTime,
    dag_run_timeout: TimeDeltaSchema,
    doc_md: Nullable(Type.String()),
    default_view: Type.String(),
    orientation: Type.String(),
    concurrency: Type.Integer(),
    params: Free,
    is_paused_upon_creation: Nullable(Type.Boolean()),
    last_parsed: DateTime,
    render_template_as_native_obj: Type.Boolean(),
    template_search_path: Nullable(Type.Array(Type.String())),
    has_on_success_callback: Type.Boolean(),
    has_on_failure_callback: Type.Boolean(),
  }),
]);

export function dagDetailJson(r: RowDataPacket, dag: SerializedDag | null): Static<typeof DagDetailSchema> {
  return {
    ...dagJson(r),
    catchup: dag ? dag.catchup : !!r.catchup,
    start_date: iso(r.start_date) ?? isoText(dag?.startDate),
    end_date: iso(r.end_date) ?? isoText(dag?.endDate),
    dag_run_timeout: timeDelta(dag?.dagrunTimeoutMs),
    doc_md: null,
    default_view: "grid",
    orientation: "LR",
    concurrency: r.max_active_tasks,
    params: dag?.params ?? {},
    is_paused_upon_creation: dag?.isPausedUponCreation ?? null,
    last_parsed: iso(r.last_parsed_at),
    render_template_as_native_obj: false,
    template_search_path: null,
    has_on_success_callback: !!dag?.callbacks?.onSuccess,
    has_on_failure_callback: !!dag?.callbacks?.onFailure,
  };
}

/** Airflow's Task object, plus Baton's kind-specific fields (upstream ids, sensor, signal, compensation). */
export const TaskSchema = Type.Object({
  class_ref: Type.Object({ module_path: Type.String(), class_name: Type.String() }),
  operator_name: Type.String({ description: "task, branch, short_circuit, sensor, wait_for_signal or compensate" }),
  task_id: Type.String(),
  task_display_name: Type.String(),
  owner: Type.String(),
  start_date: DateTime,
  end_date: DateTime,
  trigger_rule: Type.String(),
  extra_links: Type.Array(Type.Object({ class_ref: Free })),
  depends_on_past: Type.Boolean(),
  wait_for_downstream: Type.Boolean(),
  is_mapped: Type.Boolean(),
  retries: Type.Integer(),
  queue: Type.String(),
  pool: Type.String(),
  pool_slots: Type.Integer(),
  execution_timeout: TimeDeltaSchema,
  retry_delay: TimeDeltaSchema,
  max_retry_delay: TimeDeltaSchema,
  retry_exponential_backoff: Type.Boolean(),
  priority_weight: Type.Integer({ description: "The effective weight: the DAG's weight rule is already applied." }),
  weight_rule: Type.String({ description: 'Always "absolute": priority_weight is the effective weight.' }),
  ui_color: Type.String(),
  ui_fgcolor: Type.String(),
  template_fields: Type.Array(Type.String()),
  downstream_task_ids: Type.Array(Type.String()),
  upstream_task_ids: Type.Array(Type.String()),
  doc_md: Nullable(Type.String()),
  compensates: Nullable(Type.String({ description: "For a compensation task: the task it undoes." })),
  has_compensate: Type.Boolean(),
  sensor: Nullable(Free),
  signal: Nullable(Free),
});

export function taskJson(t: SerializedTask, dag: SerializedDag): Static<typeof TaskSchema> {
  return {
    class_ref: { module_path: "baton", class_name: t.kind },
    operator_name: t.kind,
    task_id: t.taskId,
    task_display_name: t.taskId,
    owner: dag.owner,
    start_date: isoText(dag.startDate),
    end_date: isoText(dag.endDate),
    trigger_rule: t.triggerRule,
    extra_links: [],
    depends_on_past: !!t.dependsOnPast,
    wait_for_downstream: !!t.waitForDownstream,
    is_mapped: false,
    retries: t.retries,
    queue: t.queue,
    pool: t.pool,
    pool_slots: t.poolSlots,
    execution_timeout: timeDelta(t.executionTimeoutMs),
    retry_delay: timeDelta(t.retryDelayMs),
    max_retry_delay: timeDelta(t.maxRetryDelayMs),
    retry_exponential_backoff: !!t.retryExponentialBackoff,
    priority_weight: t.priorityWeight,
    weight_rule: "absolute",
    ui_color: "#fff",
    ui_fgcolor: "#000",
    template_fields: [],
    downstream_task_ids: [...t.downstream],
    upstream_task_ids: [...t.upstream],
    doc_md: t.description ?? null,
    compensates: t.compensates ?? null,
    has_compensate: !!t.hasCompensate,
    sensor: t.sensor ? { ...t.sensor } : null,
    signal: t.signal ? { ...t.signal } : null,
  };
}

export function taskInstanceJson(r: RowDataPacket, logicalDate: Date | string | null): Static<typeof TaskInstanceSchema> {
  return {
    task_id: r.task_id,
    dag_id: r.dag_id,
    dag_run_id: r.run_id,
    map_index: r.map_index,
    execution_date: iso(logicalDate),
    logical_date: iso(logicalDate),
    state: r.state === "none" ? null : r.state,
    try_number: r.try_number,
    max_tries: r.max_tries,
    start_date: iso(r.start_date),
    end_date: iso(r.end_date),
    duration: r.duration ?? null,
    hostname: r.hostname ?? "",
    pid: r.pid ?? null,
    pool: r.pool,
    pool_slots: r.pool_slots,
    queue: r.queue,
    priority_weight: r.priority_weight,
    trigger_rule: r.trigger_rule,
    queued_when: iso(r.queued_at),
    next_retry_at: iso(r.next_retry_at),
    // The row keeps a failed try's error until the next try ends (no claim pays to clear it); a
    // try under way shows none, as Airflow users read `error` as the current try's. The failed
    // try's stays in its log (…/logs/{try}).
    error: currentTryEnded(r.state) ? parseJsonText<Record<string, unknown> | null>(r.error, null) : null,
    // deferred_on and next_check_at are a signal wait's (migration 0007), set only while deferred.
    waiting_for_signal: r.state === "deferred" ? (r.deferred_on ?? null) : null,
    signal_timeout_at: r.state === "deferred" ? iso(r.next_check_at) : null,
  };
}

export function importErrorJson(r: RowDataPacket) {
  return {
    import_error_id: Number(r.id),
    filename: r.fileloc,
    line: r.line ?? null,
    code: r.code,
    stack_trace: r.stack_trace ? `${r.message}\n${r.stack_trace}` : r.message,
    message: r.message,
    timestamp: iso(r.created_at),
  };
}
