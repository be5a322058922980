// What the views load, built on the public REST API only. Where an Airflow endpoint is not
// there yet (404 "no route"), it falls back to one that is: the DAG structure from
// GET /dags/{id}/versions/{v}, task instances run by run.
import { call, enc, get, isMissingRoute } from "./api.ts";
import type { AnyEventLog, Backfill, Dag, DagRun, DeadLetter, EventLog, ImportError, RedriveAnswer, RunSignal, TaskInstance, TaskNode, TaskStep, Whoami, XcomEntry } from "./types.ts";

const PAGE = 1000;

/** Every item of a list endpoint, page by page (Airflow envelopes: { <key>: [...], total_entries }). */
export async function fetchAll<T>(path: string, key: string, query: Record<string, string | number | boolean | undefined> = {}, max = 100_000): Promise<T[]> {
  const out: T[] = [];
  for (let offset = 0; offset < max; offset += PAGE) {
    const page = await get<Record<string, unknown>>(path, { ...query, limit: PAGE, offset });
    const items = (page[key] as T[]) ?? [];
    out.push(...items);
    if (items.length < PAGE || out.length >= Number(page.total_entries ?? 0)) break;
  }
  return out;
}

/** Runs fn over items, at most `limit` at a time. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export const listDags = () => fetchAll<Dag>("/dags", "dags");
export const getDag = (dagId: string) => get<Dag>(`/dags/${enc(dagId)}`);
export const listImportErrors = () => get<{ import_errors: ImportError[]; total_entries: number }>("/importErrors", { limit: 100 });
/** Every import error (a few, one per broken file). */
export const allImportErrors = () => fetchAll<ImportError>("/importErrors", "import_errors");
export const getRun = (dagId: string, runId: string) => get<DagRun>(`/dags/${enc(dagId)}/dagRuns/${enc(runId)}`);

/** The newest `n` runs of a DAG, oldest first (ordered by creation: the run list's id). */
export async function recentRuns(dagId: string, n: number): Promise<{ runs: DagRun[]; total: number }> {
  const path = `/dags/${enc(dagId)}/dagRuns`;
  const page = await get<{ dag_runs: DagRun[]; total_entries: number }>(path, { limit: n, offset: 0, order_by: "-id" });
  return { runs: [...page.dag_runs].reverse(), total: page.total_entries };
}

interface StructureTask {
  taskId: string;
  kind: string;
  downstream: string[];
  upstream: string[];
  triggerRule: string;
  retries: number;
  signal: TaskNode["signal"];
  description: string | null;
}

export interface Structure {
  dagId: string;
  timezone: string;
  schedule: string | null;
  params: Record<string, unknown>;
  tasks: TaskNode[];
}

const structures = new Map<string, Promise<Structure>>();

/** A DAG version's structure (immutable, so cached). */
export function structureOf(dagId: string, version: string): Promise<Structure> {
  const key = `${dagId}\u0000${version}`;
  let p = structures.get(key);
  if (!p) {
    p = get<{ structure: { dagId: string; timezone: string; schedule: string | null; params?: Record<string, unknown>; tasks: StructureTask[] } }>(
      `/dags/${enc(dagId)}/versions/${enc(version)}`,
    ).then(({ structure: s }) => ({
      dagId: s.dagId,
      timezone: s.timezone,
      schedule: s.schedule,
      params: s.params ?? {},
      tasks: s.tasks.map((t) => ({
        task_id: t.taskId,
        downstream_task_ids: t.downstream,
        trigger_rule: t.triggerRule,
        kind: t.kind,
        retries: t.retries,
        signal: t.signal ?? null,
        description: t.description ?? null,
      })),
    }));
    p.catch(() => structures.delete(key));
    structures.set(key, p);
  }
  return p;
}

/** The tasks of a DAG's latest version: GET /dags/{id}/tasks (Airflow), else the version's structure. */
export async function loadTasks(dag: Dag): Promise<TaskNode[]> {
  try {
    const res = await get<{ tasks: (Partial<TaskNode> & { operator_name?: string; doc_md?: string | null })[] }>(`/dags/${enc(dag.dag_id)}/tasks`);
    return res.tasks.map((t) => ({
      task_id: t.task_id!,
      downstream_task_ids: t.downstream_task_ids ?? [],
      trigger_rule: t.trigger_rule ?? "all_success",
      kind: t.kind ?? t.operator_name ?? "task",
      retries: t.retries ?? null,
      signal: t.signal ?? null,
      description: t.description ?? t.doc_md ?? null,
    }));
  } catch (err) {
    if (!isMissingRoute(err) || !dag.latest_version) throw err;
    return (await structureOf(dag.dag_id, dag.latest_version)).tasks;
  }
}

/** One run's task instances. */
export const runTaskInstances = (dagId: string, runId: string) =>
  fetchAll<TaskInstance>(`/dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances`, "task_instances");

let batchListWorks: boolean | null = null;

/**
 * Task instances of several runs: POST /dags/~/dagRuns/~/taskInstances/list (Airflow's batch
 * list, 1,000 a page) where the server has it, else run by run.
 */
export async function taskInstancesOf(dagId: string, runIds: string[]): Promise<TaskInstance[]> {
  if (runIds.length === 0) return [];
  if (batchListWorks !== false && runIds.length > 1) {
    try {
      const out: TaskInstance[] = [];
      for (let offset = 0; ; offset += PAGE) {
        const res = await call<{ task_instances: TaskInstance[]; total_entries: number }>("POST", "/dags/~/dagRuns/~/taskInstances/list", {
          body: { dag_ids: [dagId], dag_run_ids: runIds, page_limit: PAGE, page_offset: offset },
        });
        out.push(...res.task_instances);
        if (res.task_instances.length < PAGE || out.length >= res.total_entries) break;
      }
      batchListWorks = true;
      return out;
    } catch (err) {
      if (!isMissingRoute(err) && (err as { status?: number }).status !== 400) throw err;
      batchListWorks = false;
    }
  }
  const lists = await mapLimit(runIds, 4, (runId) => runTaskInstances(dagId, runId));
  return lists.flat();
}

/** The newest `n` events matching a filter, oldest first. */
export async function recentEvents(filter: { dag_id?: string; dag_run_id?: string; task_id?: string }, n = 200): Promise<EventLog[]> {
  const first = await get<{ event_logs: EventLog[]; total_entries: number }>("/eventLogs", { ...filter, limit: n, offset: 0 });
  if (first.total_entries <= n) return first.event_logs;
  return (await get<{ event_logs: EventLog[] }>("/eventLogs", { ...filter, limit: n, offset: first.total_entries - n })).event_logs;
}

/** A task's XCom entries with values: the list endpoint where there is one, else return_value. */
export async function xcomsOf(dagId: string, runId: string, taskId: string): Promise<XcomEntry[]> {
  const base = `/dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances/${enc(taskId)}/xcomEntries`;
  let keys: XcomEntry[];
  try {
    keys = (await get<{ xcom_entries: XcomEntry[] }>(base)).xcom_entries;
  } catch (err) {
    if (!isMissingRoute(err)) throw err;
    keys = [{ key: "return_value", task_id: taskId, timestamp: null }];
  }
  const out: XcomEntry[] = [];
  for (const k of keys.slice(0, 50)) {
    if ("value" in k && k.value !== undefined) {
      out.push(k);
      continue;
    }
    try {
      out.push(await get<XcomEntry>(`${base}/${enc(k.key)}`));
    } catch (err) {
      if ((err as { code?: string }).code !== "BATON_XCOM_NOT_FOUND") throw err;
    }
  }
  return out;
}

/** The first `n` items of a list and how many there are; null where the server has no such route. */
async function firstPage<T>(path: string, key: string, n: number): Promise<{ items: T[]; total: number } | null> {
  try {
    const page = await get<Record<string, unknown>>(path, { limit: n, offset: 0 });
    return { items: (page[key] as T[]) ?? [], total: Number(page.total_entries ?? 0) };
  } catch (err) {
    if (isMissingRoute(err)) return null;
    throw err;
  }
}

/** A task instance's durable steps (ctx.step), in the order recorded. */
export const stepsOf = (dagId: string, runId: string, taskId: string, n = 200) =>
  firstPage<TaskStep>(`/dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances/${enc(taskId)}/steps`, "steps", n);

/** The signals a run received, in arrival order. */
export const signalsOf = (dagId: string, runId: string, n = 200) => firstPage<RunSignal>(`/dags/${enc(dagId)}/dagRuns/${enc(runId)}/signals`, "signals", n);

/** Mark a task instance success or failed: PATCH the instance (Airflow), else updateTaskInstancesState. */
export async function setTaskState(dagId: string, runId: string, taskId: string, state: "success" | "failed"): Promise<void> {
  try {
    await call("PATCH", `/dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances/${enc(taskId)}`, { body: { dry_run: false, new_state: state } });
  } catch (err) {
    if (!isMissingRoute(err)) throw err;
    await call("POST", `/dags/${enc(dagId)}/updateTaskInstancesState`, {
      body: { dry_run: false, dag_run_id: runId, task_id: taskId, new_state: state, include_upstream: false, include_downstream: false, include_future: false, include_past: false },
    });
  }
}

export function clearTasks(dagId: string, runId: string, taskIds: string[] | undefined, opts: { onlyFailed: boolean; downstream?: boolean }) {
  return call<{ task_instances: { task_id: string; dag_run_id: string; state: string | null; new_state: string | null }[] }>("POST", `/dags/${enc(dagId)}/clearTaskInstances`, {
    body: {
      dag_run_id: runId,
      ...(taskIds ? { task_ids: taskIds } : {}),
      dry_run: false,
      only_failed: opts.onlyFailed,
      include_downstream: opts.downstream ?? false,
    },
  });
}

export const setPaused = (dagId: string, paused: boolean) => call<Dag>("PATCH", `/dags/${enc(dagId)}`, { body: { is_paused: paused } });

export const triggerRun = (dagId: string, body: { conf: Record<string, unknown>; dag_run_id?: string; logical_date?: string; note?: string }) =>
  call<DagRun>("POST", `/dags/${enc(dagId)}/dagRuns`, { body });

export const failRun = (dagId: string, runId: string) => call<DagRun>("PATCH", `/dags/${enc(dagId)}/dagRuns/${enc(runId)}`, { body: { state: "failed" } });

export const sendSignal = (dagId: string, runId: string, name: string, payload: unknown, signalId?: string) =>
  call<{ signal_id: string | null; duplicate: boolean; delivered_to: string | null }>("POST", `/dags/${enc(dagId)}/dagRuns/${enc(runId)}/signals/${enc(name)}`, {
    body: { ...(payload === undefined ? {} : { payload }), ...(signalId ? { signal_id: signalId } : {}) },
  });

export const listBackfills = (dagId: string) => fetchAll<Backfill>("/backfills", "backfills", { dag_id: dagId });
export const getBackfill = (id: number) => get<Backfill>(`/backfills/${id}`);
export const controlBackfill = (id: number, action: "pause" | "unpause" | "cancel") => call<Backfill>("POST", `/backfills/${id}/${action}`, { body: {} });

/** The token's own role; null from a server without GET /whoami (it cannot say). */
export async function whoami(): Promise<Whoami | null> {
  try {
    return await get<Whoami>("/whoami");
  } catch (err) {
    if (isMissingRoute(err)) return null;
    throw err;
  }
}

/** One page of dead letters, newest first, of one DAG or all. */
export const listDeadLetters = (page: { dagId?: string; limit: number; offset: number }, signal?: AbortSignal) =>
  get<{ dead_letters: DeadLetter[]; total_entries: number }>("/deadLetters", { dag_id: page.dagId || undefined, limit: page.limit, offset: page.offset }, signal);

export const redriveDeadLetters = (ids: number[]) => call<RedriveAnswer>("POST", "/deadLetters/redrive", { body: { task_instance_ids: ids } });

/** One page of the event log (query: eventLogQuery's filters and order): the first, or the one after a next_cursor. */
export const listEventLogs = (query: Record<string, string>, limit: number, cursor: string | null, signal?: AbortSignal) =>
  get<{ event_logs: AnyEventLog[]; total_entries: number; next_cursor: string | null }>("/eventLogs", { ...query, limit, cursor: cursor ?? undefined }, signal);
