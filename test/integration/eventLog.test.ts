import type { AddressInfo } from "node:net";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import { expectProblem, NAME_RULE_DETAIL, withControlCharacters } from "../helpers/expect.ts";
import type { ResultSetHeader, RowDataPacket } from "../../store/db.ts";
import { insertToken, recordAuthEvent } from "../../store/apiTokens.ts";
import { buildApp } from "../../api/app.ts";
import { generateToken, hashToken } from "../../core/apiTokens.ts";

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
  event: string;
  kind: string;
  dag_id: string;
  run_id: string;
  dag_run_id: string;
  map_index: number | null;
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

  const runToEnd = async (runId: string) => {
    await h.trigger("history", { runId });
    await waitFor(`run ${runId} to end`, async () => (await h.runState("history", runId)) === "success");
  };
  const eventLogs = async (query: string) => {
    const res = await h.app.inject({ method: "GET", url: `/api/v1/eventLogs?${query}` });
    expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 200 });
    return res.json() as { event_logs: EventJson[]; total_entries: number };
  };

  it("filters as Airflow does: run_id (dag_run_id an alias), event, owner, map_index, try_number, included/excluded events", async () => {
    await runToEnd("filters_a");
    await runToEnd("filters_b");
    const all = await eventLogs("dag_id=history&limit=1000");
    const ofA = all.event_logs.filter((e) => e.run_id === "filters_a");
    expect(ofA.length).toBeGreaterThan(10);

    // run_id is Airflow's name; the old dag_run_id still works, and both agreeing is fine.
    expect((await eventLogs("run_id=filters_a&limit=1000")).event_logs).toEqual(ofA);
    expect((await eventLogs("dag_run_id=filters_a&limit=1000")).event_logs).toEqual(ofA);
    expect((await eventLogs("run_id=filters_a&dag_run_id=filters_a&limit=1000")).event_logs).toEqual(ofA);
    const differ = await h.app.inject({ method: "GET", url: "/api/v1/eventLogs?run_id=filters_a&dag_run_id=filters_b" });
    expect(differ.statusCode).toBe(400);
    expect(differ.json()).toMatchObject({ code: "BATON_VALIDATION_FAILED" });
    expect(differ.json().detail).toContain("run_id");
    expect(differ.json().detail).toContain("dag_run_id");

    // event: exactly kind:to_state.
    const succeeded = await eventLogs("run_id=filters_a&event=task:success&limit=1000");
    // after_broken never ran (its upstream failed), so three tasks succeeded.
    expect(succeeded.event_logs.map((e) => e.task_id).sort()).toEqual(["a", "cleanup", "flaky"]);
    expect(succeeded.event_logs.every((e) => e.event === "task:success" && e.kind === "task" && e.to_state === "success")).toBe(true);
    expect(succeeded.total_entries).toBe(ofA.filter((e) => e.event === "task:success").length);
    expect((await eventLogs("run_id=filters_a&event=run:success")).event_logs.map((e) => e.event)).toEqual(["run:success"]);
    // Not an event name (no kind), a kind alone, an unknown state: nothing matches, nothing fails.
    for (const name of ["success", "task", "task:", "task:exploded", "%", "' OR 1=1 --"]) {
      expect((await eventLogs(`event=${encodeURIComponent(name)}`)).total_entries).toBe(0);
    }

    // included_events / excluded_events: comma-separated names.
    const failures = await eventLogs("run_id=filters_a&included_events=task:failed,%20run:failed,nonsense&limit=1000");
    expect(failures.event_logs.map((e) => `${e.task_id}:${e.event}`)).toEqual(["broken:task:failed"]);
    const notTasks = await eventLogs("run_id=filters_a&excluded_events=task:none,task:queued,task:running,task:success,task:failed,task:up_for_retry,task:upstream_failed,task:skipped&limit=1000");
    expect(notTasks.event_logs.every((e) => e.kind === "run")).toBe(true);
    expect(notTasks.total_entries).toBe(ofA.filter((e) => e.kind === "run").length);
    expect((await eventLogs("included_events=nonsense")).total_entries).toBe(0);

    // try_number and map_index.
    const secondTries = await eventLogs("run_id=filters_a&task_id=flaky&try_number=2");
    expect(secondTries.event_logs.map((e) => `${e.from_state}→${e.to_state}`)).toEqual(["queued→running", "running→success"]);
    const unmapped = await eventLogs("run_id=filters_a&map_index=-1&limit=1000");
    expect(unmapped.total_entries).toBe(ofA.filter((e) => e.map_index === -1).length);
    expect(unmapped.total_entries).toBeGreaterThan(0);
    expect((await eventLogs("run_id=filters_a&map_index=7")).total_entries).toBe(0);

    // owner: the actor column.
    const owner = ofA.find((e) => e.to_state === "running")!.owner!;
    const byOwner = await eventLogs(`run_id=filters_a&owner=${encodeURIComponent(owner)}&limit=1000`);
    expect(byOwner.total_entries).toBe(ofA.filter((e) => e.owner === owner).length);
    expect(byOwner.event_logs.every((e) => e.owner === owner)).toBe(true);
    expect((await eventLogs("owner=nobody-at-all")).total_entries).toBe(0);

    // Refused requests are events too: auth:forbidden by the token that asked.
    await recordAuthEvent(h.db.pool, { at: new Date(), outcome: "forbidden", actor: "viewer-token", detail: "POST /api/v1/pools needs admin" });
    const refused = await eventLogs("event=auth:forbidden&owner=viewer-token");
    expect(refused.event_logs).toEqual([expect.objectContaining({ event: "auth:forbidden", kind: "auth", owner: "viewer-token", extra: "POST /api/v1/pools needs admin" })]);

    // Parameters Airflow does not document are ignored, as Airflow ignores them.
    expect((await eventLogs("run_id=filters_a&no_such_filter=1&limit=1000")).event_logs).toEqual(ofA);
  });

  it("names the API token that made a change as its owner, and the process for what the process does", async () => {
    const token = generateToken();
    await insertToken(h.db.pool, { name: "ops-bot", role: "operator", hash: hashToken(token), prefix: "baton_x", now: new Date() });
    const secured = await buildApp({ db: h.db, clock: h.clock, logger: h.logger, config: { logsFolder: h.logsFolder }, auth: { mode: "on" } });
    const asBot = (method: "POST", url: string, payload: object) => secured.inject({ method, url, headers: { authorization: `Bearer ${token}` }, payload });
    try {
      expect((await asBot("POST", "/api/v1/dags/history/dagRuns", { dag_run_id: "by_token" })).statusCode).toBe(200);
      // The same pool's next change without a token is the process's again.
      expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/history/dagRuns", payload: { dag_run_id: "by_process" } })).statusCode).toBe(200);
      const ownersOf = async (query: string) => (await eventLogs(query)).event_logs.map((e) => e.owner);
      expect(await ownersOf("run_id=by_token&event=run:queued")).toEqual(["token:ops-bot"]);
      const [processOwner] = await ownersOf("run_id=by_process&event=run:queued");
      expect(processOwner).not.toBe("token:ops-bot");
      // What the scheduler and worker then do in the token's run is theirs.
      await waitFor("both runs to end", async () => {
        const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = 'history' AND run_id IN ('by_token', 'by_process')");
        return rows.length === 2 && rows.every((r) => r.state === "success" || r.state === "failed");
      });
      expect(await ownersOf("run_id=by_token&event=run:running")).toEqual([processOwner]);
      // A change made in a transaction (a clear) is the token's too.
      expect((await asBot("POST", "/api/v1/dags/history/clearTaskInstances", { dag_run_id: "by_process", task_ids: ["cleanup"], only_failed: false, dry_run: false })).statusCode).toBe(200);
      // (Its first task:none is the scheduler creating the task instance.)
      expect(await ownersOf("run_id=by_process&task_id=cleanup&event=task:none")).toEqual([processOwner, "token:ops-bot"]);
      await waitFor("the cleared task to run again", async () => (await eventLogs("run_id=by_process&task_id=cleanup&event=task:success")).event_logs.length === 2);
    } finally {
      await secured.close();
    }
  });

  it("rejects malformed filters with 400 problem JSON", async () => {
    for (const query of ["map_index=abc", "map_index=-2", "try_number=-1", "try_number=1.5", "run_id=", "event=", "owner=", "included_events=", `event=${"x".repeat(301)}`]) {
      const res = await h.app.inject({ method: "GET", url: `/api/v1/eventLogs?${query}` });
      expect({ query, status: res.statusCode, code: res.json().code }).toEqual({ query, status: 400, code: "BATON_VALIDATION_FAILED" });
    }
  });

  // No event name, owner or id holds a control character or ends with whitespace: a filter that
  // does is refused by the API's one name rule (core/dagLimits.ts), in the list and the stream.
  // (included_events and excluded_events are lists of trimmed items: the next test.)
  it("refuses filters holding a control character or ending with a tab, and still answers plain ones", async () => {
    await runToEnd("filters_ctl");
    const owner = (await eventLogs("run_id=filters_ctl&event=task:success&task_id=a")).event_logs[0]!.owner!;
    const good: Record<string, string> = {
      dag_id: "history",
      run_id: "filters_ctl",
      dag_run_id: "filters_ctl",
      task_id: "a",
      event: "task:success",
      owner,
    };
    for (const [field, value] of Object.entries(good)) {
      for (const bad of withControlCharacters(value)) {
        for (const path of ["eventLogs", "events"]) {
          const res = await h.app.inject({ method: "GET", url: `/api/v1/${path}?${field}=${encodeURIComponent(bad)}` });
          expectProblem(res, 400, "BATON_VALIDATION_FAILED", `querystring.${field} ${NAME_RULE_DETAIL}`);
        }
      }
      const plain = await eventLogs(`${field === "run_id" ? "" : "run_id=filters_ctl&"}${field}=${encodeURIComponent(value)}`);
      expect({ field, found: plain.total_entries > 0 }).toEqual({ field, found: true });
    }
    const all = `dag_id=history&task_id=a&event=task:success&owner=${encodeURIComponent(owner)}&included_events=task:success,run:success&excluded_events=task:queued`;
    expect((await eventLogs(`run_id=filters_ctl&${all}`)).total_entries).toBe(1);
  });

  // Their items are trimmed before they are compared, so whitespace around one (a trailing newline
  // or tab too) changes nothing, as a space after a comma does; a control character inside an
  // item (or a NUL, which is no whitespace, at its end) is refused, in the list and the stream.
  it("takes whitespace around included_events and excluded_events items, and refuses a control character in one", async () => {
    await runToEnd("filters_ws");
    if (!h.app.server.listening) await h.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = h.app.server.address() as AddressInfo;
    const lists = { included_events: ["task:success", "run:success"], excluded_events: ["task:queued", "task:running"] };
    for (const [field, [first, second]] of Object.entries(lists) as [string, string[]][]) {
      const count = async (value: string) => (await eventLogs(`run_id=filters_ws&limit=1000&${field}=${encodeURIComponent(value)}`)).total_entries;
      const plain = await count(`${first},${second}`);
      expect(plain).toBeGreaterThan(0);
      for (const spaced of [`${first},${second} `, `${first},${second}\n`, `${first},${second}\t`, `${first}\t,\r\n${second}\r\n`, ` ${first} , ${second}`]) {
        expect({ field, spaced, entries: await count(spaced) }).toEqual({ field, spaced, entries: plain });
        const controller = new AbortController();
        try {
          const stream = await fetch(`http://127.0.0.1:${port}/api/v1/events?poll_ms=50&${field}=${encodeURIComponent(spaced)}`, { signal: controller.signal });
          expect({ field, spaced, status: stream.status }).toEqual({ field, spaced, status: 200 });
        } finally {
          controller.abort();
        }
      }
      const inside = [`${first.replace(":", ":\t")},${second}`, `${first},${second.replace(":", "\n:")}`, `${first}\u0000,${second}`, `${first},${second}\u0085`];
      for (const bad of inside) {
        for (const path of ["eventLogs", "events"]) {
          const res = await h.app.inject({ method: "GET", url: `/api/v1/${path}?${field}=${encodeURIComponent(bad)}` });
          expectProblem(res, 400, "BATON_VALIDATION_FAILED", `querystring.${field}`);
          expect({ bad, detail: res.json().detail }).toEqual({ bad, detail: expect.stringContaining("control character") });
        }
      }
    }
  });

  it("GET /eventLogs/{event_log_id} answers one entry as the list shows it, 404 for an unknown id, 400 for a malformed one", async () => {
    const page = await eventLogs("dag_id=history&limit=5&order_by=-event_log_id");
    for (const entry of page.event_logs) {
      const one = await h.app.inject({ method: "GET", url: `/api/v1/eventLogs/${entry.event_log_id}` });
      expect(one.statusCode).toBe(200);
      expect(one.json()).toEqual(entry);
    }
    const unknown = await h.app.inject({ method: "GET", url: "/api/v1/eventLogs/999999999" });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: "BATON_EVENT_LOG_NOT_FOUND", status: 404 });
    expect(unknown.json().detail).toContain("999999999");
    for (const bad of ["abc", "0", "-3", "1.5", "1e309"]) {
      const res = await h.app.inject({ method: "GET", url: `/api/v1/eventLogs/${bad}` });
      expect({ bad, status: res.statusCode, code: res.json().code }).toEqual({ bad, status: 400, code: "BATON_VALIDATION_FAILED" });
    }
  });

  it("filters by task and rejects bad dates", async () => {
    const page = await h.app.inject({ method: "GET", url: "/api/v1/eventLogs?dag_id=history&task_id=broken" });
    expect(page.json().event_logs.every((e: EventJson) => e.task_id === "broken")).toBe(true);
    const bad = await h.app.inject({ method: "GET", url: "/api/v1/eventLogs?after=yesterday" });
    expect(bad.statusCode).toBe(400);
  });

  it("streams new events as server-sent events", async () => {
    if (!h.app.server.listening) await h.app.listen({ port: 0, host: "127.0.0.1" });
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

  it("the stream sends an event whose transaction commits after a later event's", async () => {
    if (!h.app.server.listening) await h.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = h.app.server.address() as AddressInfo;
    const insert = "INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, to_state) VALUES (UTC_TIMESTAMP(6), 'run', 'late_commit', ?, 0, 'running')";
    // An open transaction holds an id below the stream's start, another one an id above it.
    const early = await h.db.pool.getConnection();
    const late = await h.db.pool.getConnection();
    const controller = new AbortController();
    try {
      await early.beginTransaction();
      await early.query(insert, ["below_start"]);
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/events?dag_id=late_commit&poll_ms=50`, { signal: controller.signal });
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = "";
      const readUntil = async (needle: string) => {
        const deadline = Date.now() + 10_000;
        while (!text.includes(needle) && Date.now() < deadline) {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<{ value: undefined; done: true }>((r) => (timer = setTimeout(() => r({ value: undefined, done: true }), deadline - Date.now())));
          const { value, done } = await Promise.race([reader.read(), timeout]);
          clearTimeout(timer);
          if (done) break;
          text += decoder.decode(value);
        }
        return text.includes(needle);
      };
      await late.beginTransaction();
      await late.query(insert, ["held"]);
      await h.db.pool.query(insert, ["committed_first"]);
      expect(await readUntil('"run_id":"committed_first"')).toBe(true);
      await late.commit();
      await early.commit();
      expect(await readUntil('"run_id":"held"')).toBe(true);
      expect(await readUntil('"run_id":"below_start"')).toBe(true);
      const runIds = [...text.matchAll(/^data: (.*)$/gm)].map((m) => (JSON.parse(m[1]!) as EventJson).run_id);
      expect(runIds[0]).toBe("committed_first");
      expect([...runIds].sort()).toEqual(["below_start", "committed_first", "held"]);
      // `id:` never goes back, so a reconnect resumes after everything sent.
      const positions = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
    } finally {
      controller.abort();
      early.release();
      late.release();
    }
  });

  it("the stream tells a filtered client its position: where it starts, and past events it does not send", async () => {
    if (!h.app.server.listening) await h.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = h.app.server.address() as AddressInfo;
    const insert = "INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, to_state) VALUES (UTC_TIMESTAMP(6), 'run', ?, 'r', 0, 'running')";
    const controller = new AbortController();
    /** Reads a stream until `done(text)` holds or 10 s pass; answers the text read. */
    const open = async (headers: Record<string, string> = {}) => {
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/events?dag_id=position_only&poll_ms=50`, { headers, signal: controller.signal });
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      const stream = { text: "" };
      const readUntil = async (done: (text: string) => boolean) => {
        const deadline = Date.now() + 10_000;
        while (!done(stream.text) && Date.now() < deadline) {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<{ value: undefined; done: true }>((r) => (timer = setTimeout(() => r({ value: undefined, done: true }), deadline - Date.now())));
          const { value, done: ended } = await Promise.race([reader.read(), timeout]);
          clearTimeout(timer);
          if (ended) break;
          stream.text += decoder.decode(value);
        }
        return done(stream.text);
      };
      return { stream, readUntil };
    };
    const positions = (text: string) => [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    try {
      const [before] = await h.db.pool.query<RowDataPacket[]>("SELECT COALESCE(MAX(id), 0) AS id FROM event_log");
      const first = await open();
      // At once: where it starts (the latest event), before any event of its own.
      expect(await first.readUntil((t) => positions(t).length > 0)).toBe(true);
      expect(positions(first.stream.text)[0]).toBeGreaterThanOrEqual(Number(before[0]!.id));
      // Another DAG's event moves the position past it, with no data sent.
      const [other] = await h.db.pool.query<ResultSetHeader>(insert, ["position_other"]);
      expect(await first.readUntil((t) => positions(t).some((id) => id >= other.insertId))).toBe(true);
      expect(first.stream.text).not.toContain("data:");
      expect(positions(first.stream.text)).toEqual([...positions(first.stream.text)].sort((a, b) => a - b));
      // A client resuming from there gets what came after it, and nothing before.
      const resumed = await open({ "last-event-id": String(Math.max(...positions(first.stream.text))) });
      await h.db.pool.query(insert, ["position_only"]);
      expect(await resumed.readUntil((t) => t.includes('"dag_id":"position_only"'))).toBe(true);
      expect([...resumed.stream.text.matchAll(/^data: (.*)$/gm)].map((m) => (JSON.parse(m[1]!) as EventJson).dag_id)).toEqual(["position_only"]);
    } finally {
      controller.abort();
    }
  });

  it("the stream takes the same filters: run_id and event", async () => {
    if (!h.app.server.listening) await h.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = h.app.server.address() as AddressInfo;
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/events?run_id=streamed_failures&event=task:failed&poll_ms=50`, { signal: controller.signal });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    // Another run at the same time must not show up.
    for (const runId of ["streamed_other", "streamed_failures"]) {
      const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/history/dagRuns", payload: { dag_run_id: runId } });
      expect(res.statusCode).toBe(200);
    }
    let text = "";
    const decoder = new TextDecoder();
    const deadline = Date.now() + 15_000;
    while (!text.includes('"task_id":"broken"') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    // Let the rest of the run (and the other run) commit: nothing else may follow.
    await waitFor("both runs to end", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM dag_run WHERE run_id IN ('streamed_other', 'streamed_failures') AND state = 'success'");
      return Number(rows[0]!.n) === 2;
    });
    await new Promise((r) => setTimeout(r, 200)); // two poll periods, so an unfiltered event would have been sent
    controller.abort();
    const events = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as EventJson);
    expect(events.map((e) => `${e.run_id}/${e.task_id}/${e.event}`)).toEqual(["streamed_failures/broken/task:failed"]);
    const bad = await fetch(`http://127.0.0.1:${port}/api/v1/events?run_id=a&dag_run_id=b`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe("BATON_VALIDATION_FAILED");
  });
});
