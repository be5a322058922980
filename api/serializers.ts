// Rows to Airflow v1 shaped JSON (snake_case, ISO dates, Airflow's null for "none").
import type { RowDataPacket } from "../store/db.ts";
import { isoOrNull, parseJsonText } from "../store/rows.ts";

const iso = (v: unknown) => isoOrNull(v as Date | null);

export function dagJson(r: RowDataPacket) {
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

export function dagRunJson(r: RowDataPacket) {
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

export function taskInstanceJson(r: RowDataPacket, logicalDate: Date | null) {
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
    error: parseJsonText<Record<string, unknown> | null>(r.error, null),
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
