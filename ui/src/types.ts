// The REST API's shapes (Airflow stable REST API v1, plus Baton's fields), as far as the UI reads them.

export interface Dag {
  dag_id: string;
  is_paused: boolean;
  is_active: boolean;
  fileloc: string;
  description: string | null;
  owners: string[];
  tags: { name: string }[];
  schedule_interval: { __type: string; value: string } | null;
  timezone: string;
  has_import_errors: boolean;
  next_dagrun: string | null;
  next_dagrun_create_after: string | null;
  latest_version: string | null;
}

export interface DagRun {
  dag_run_id: string;
  dag_id: string;
  logical_date: string | null;
  data_interval_start: string | null;
  data_interval_end: string | null;
  queued_at: string | null;
  start_date: string | null;
  end_date: string | null;
  run_type: string;
  state: string;
  conf: Record<string, unknown>;
  note: string | null;
  dag_version: string;
  compensation?: string | null;
}

export interface TaskInstance {
  task_id: string;
  dag_id: string;
  dag_run_id: string;
  map_index: number;
  state: string | null;
  try_number: number;
  max_tries: number;
  start_date: string | null;
  end_date: string | null;
  duration: number | null;
  hostname: string;
  pool: string;
  queue: string;
  trigger_rule?: string;
  queued_when?: string | null;
  next_retry_at?: string | null;
  /** Baton: while deferred, the signal it waits for and when that wait times out (null: never). */
  waiting_for_signal?: string | null;
  signal_timeout_at?: string | null;
  error?: { message?: string; code?: string; name?: string } | null;
}

/** One task of a DAG, from GET /dags/{id}/tasks (Airflow) or a version's structure (Baton). */
export interface TaskNode {
  task_id: string;
  downstream_task_ids: string[];
  trigger_rule: string;
  kind: string;
  retries: number | null;
  /** waitForSignal tasks: the signal they wait for. */
  signal: { name: string; timeoutMs: number | null; onTimeout: string } | null;
  description: string | null;
}

export interface ImportError {
  import_error_id: number;
  filename: string;
  line: number | null;
  code: string;
  message: string;
  stack_trace: string;
  timestamp: string | null;
}

/** An event log entry about a run or a task (what the UI shows): its DAG and run ids are set. */
export interface EventLog {
  event_log_id: number;
  when: string | null;
  event: string;
  kind: string;
  dag_id: string;
  dag_run_id: string;
  task_id: string | null;
  try_number: number | null;
  from_state: string | null;
  to_state: string;
  owner: string | null;
  hostname: string | null;
  map_index?: number | null;
  /** What a refused request asked for, or why a state change was made; null for routine changes. */
  extra?: string | null;
}

/** Any entry as the API sends it: one about no DAG or run (a refused request, kind auth) has null ids. */
export type AnyEventLog = Omit<EventLog, "dag_id" | "dag_run_id"> & { dag_id: string | null; dag_run_id: string | null };

export interface Backfill {
  id: number;
  dag_id: string;
  from_date: string | null;
  to_date: string | null;
  reprocess_behavior: string;
  max_active_runs: number;
  state: string;
  is_paused: boolean;
  total_dates: number;
  created_at: string | null;
  completed_at: string | null;
  done?: number;
  failed?: number;
  counts?: Record<string, number>;
  /** Why a running or cancelling backfill makes no progress ("dag_inactive"), null otherwise. */
  waiting_reason?: string | null;
  waiting_message?: string | null;
}

export interface XcomEntry {
  key: string;
  task_id: string;
  timestamp: string | null;
  value?: unknown;
}

/** A durable step (ctx.step) of a task instance: GET …/taskInstances/{task_id}/steps. */
export interface TaskStep {
  name: string;
  try_number: number;
  recorded_at: string | null;
  result: unknown;
  result_bytes: number;
  /** The result is over 64 KiB and left out of the list. */
  result_omitted: boolean;
}

/** A signal a run received: GET …/dagRuns/{dag_run_id}/signals. */
export interface RunSignal {
  name: string;
  signal_id: string | null;
  payload: unknown;
  received_at: string | null;
  delivered_to: string | null;
  delivered_at: string | null;
}

/** A task instance that failed with no try left: GET /deadLetters. */
export interface DeadLetter {
  task_instance_id: number;
  dag_id: string;
  dag_run_id: string;
  task_id: string;
  map_index: number;
  try_number: number;
  max_tries: number;
  failed_at: string | null;
  hostname: string | null;
  error_class: string | null;
  error_code: string | null;
  error_message: string | null;
}

/** A task instance a re-drive by id was asked for that was no dead letter, and why. */
export interface NotDeadLetter {
  task_instance_id: number;
  dag_id: string | null;
  dag_run_id: string | null;
  task_id: string | null;
  state: string | null;
  reason: string;
}

/** POST /deadLetters/redrive's answer. */
export interface RedriveAnswer {
  dead_letters: (DeadLetter & { skipped: string | null })[];
  redriven: number;
  dry_run: boolean;
  not_dead_letters: NotDeadLetter[];
}

/** GET /whoami: the token's own role (auth off: admin). */
export interface Whoami {
  auth: "on" | "off";
  token_name: string | null;
  role: "viewer" | "operator" | "admin";
}
