import type { AddressInfo } from "node:net";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
export default dag({ id: "history", defaultArgs: { retries: 1, retryDelay: 50 } }, (t) => {
  const a = t.task("a", async () => 1);
  const flaky = t.task("flaky", async (ctx) => { if (ctx.tryNumber === 1) throw new Error("first try fails"); return 2; });
  const broken = t.task("broken", { retries: 0 }, async () => { throw new Error("always"); });
  const after = t.task("after_broken", async () => 3);
  const cleanup = t.task("cleanup", { triggerRule: "all_done" }, async () => 4);
  a.then([flaky, broken]);
  broken.then(after);
  flaky.then(cleanup);
  after.then(cleanup);
});
`);

interface EventJson {
  event_log_id: number;
  kind: string;
  task_id: string | null;
  from_state: string | null;
  to_state: string;
  try_number: number | null;
  owner: string | null;
}

describe("event log", () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start({ "history.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  it("a run's full history replays to the same final states as the tables", async () => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/history/dagRuns", payload: {} });
    const runId = res.json().dag_run_id as string;
    await waitFor("the run to end", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = 'history' AND run_id = ?", [runId]);
      // Its only leaf (cleanup, all_done) succeeds, so the run succeeds although "broken" failed.
      return rows[0]?.state === "success";
    });
    const page = await h.app.inject({ method: "GET", url: `/api/v1/eventLogs?dag_id=history&dag_run_id=${encodeURIComponent(runId)}&limit=1000` });
    expect(page.statusCode).toBe(200);
    const events = page.json().event_logs as EventJson[];
    expect(page.json().total_entries).toBe(events.length);
    // Newest first on request: the same events, reversed.
    const newest = await h.app.inject({ method: "GET", url: `/api/v1/eventLogs?dag_id=history&dag_run_id=${encodeURIComponent(runId)}&limit=1000&order_by=-event_log_id` });
    expect((newest.json().event_logs as EventJson[]).map((e) => e.event_log_id)).toEqual(events.map((e) => e.event_log_id).reverse());

    // Replay: each event moves one state from `from` to `to`; the chain must be unbroken.
    const replayed = new Map<string, string>();
    for (const e of events) {
      const key = e.kind === "run" ? "<run>" : e.task_id!;
      expect(e.from_state ?? null).toBe(replayed.get(key) ?? null);
      replayed.set(key, e.to_state);
    }
    const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE dag_id = 'history' AND run_id = ?", [runId]);
    const tables = new Map<string, string>(tis.map((r) => [r.task_id as string, r.state as string]));
    tables.set("<run>", "success");
    expect(Object.fromEntries(replayed)).toEqual(Object.fromEntries(tables));

    // The retried task's history shows both tries, and who ran them.
    const flaky = events.filter((e) => e.task_id === "flaky").map((e) => `${e.from_state}→${e.to_state}#${e.try_number}`);
    expect(flaky).toEqual(["null→none#0", "none→queued#0", "queued→running#1", "running→up_for_retry#1", "up_for_retry→queued#1", "queued→running#2", "running→success#2"]);
    expect(events.every((e) => typeof e.owner === "string" && e.owner.length > 0)).toBe(true);
  });

  it("filters by task and rejects bad dates", async () => {
    const page = await h.app.inject({ method: "GET", url: "/api/v1/eventLogs?dag_id=history&task_id=broken" });
    expect(page.json().event_logs.every((e: EventJson) => e.task_id === "broken")).toBe(true);
    const bad = await h.app.inject({ method: "GET", url: "/api/v1/eventLogs?after=yesterday" });
    expect(bad.statusCode).toBe(400);
  });

  it("streams new events as server-sent events", async () => {
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = h.app.server.address() as AddressInfo;
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/events?dag_id=history&poll_ms=50`, { signal: controller.signal });
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const reader = response.body!.getReader();
    const trigger = await fetch(`http://127.0.0.1:${port}/api/v1/dags/history/dagRuns`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    const runId = ((await trigger.json()) as { dag_run_id: string }).dag_run_id;
    let text = "";
    const decoder = new TextDecoder();
    const deadline = Date.now() + 15_000;
    while (!text.includes('"to_state":"failed","owner"') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    controller.abort();
    expect(text).toContain(`"dag_run_id":"${runId}"`);
    expect(text).toMatch(/event: run\ndata: .*"to_state":"running"/);
    expect(text).toMatch(/id: \d+\n/);
  });
});
