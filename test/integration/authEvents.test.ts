// Refused requests in the event log, beside the changes tokens make: a token's refusals are owned
// by "token:<name>" as its changes are (so ?owner=token:<name> finds both), and an entry about no
// DAG or run answers null for those ids, not "".
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../api/app.ts";
import { generateToken, hashToken } from "../../core/apiTokens.ts";
import { insertToken } from "../../store/apiTokens.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const DAG = dagSource(`export default dag({ id: "owned" }, (t) => { t.task("a", async () => 1); });`);

// A token name may be 250 characters (api_token.name), so its owner "token:<name>" 256.
const LONGEST = "k".repeat(250);

describe("refused requests in the event log", () => {
  const h = new Harness({ worker: false, manualTicks: true });
  let app: FastifyInstance;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    await h.start({ "owned.ts": DAG });
    await h.processor.scan();
    for (const [name, role] of [["v1", "viewer"], ["o1", "operator"], ["a1", "admin"], [LONGEST, "operator"], [LONGEST.slice(1), "operator"]] as const) {
      tokens[name] = generateToken();
      await insertToken(h.db.pool, { name, role, hash: hashToken(tokens[name]!), prefix: "baton_x", now: h.clock.now() });
    }
    app = await buildApp({ db: h.db, clock: h.clock, logger: h.logger, config: { logsFolder: h.logsFolder, authRefusalsPerMinute: 1000 }, auth: { mode: "on" } });
  });
  afterAll(async () => {
    await app?.close();
    await h.stop();
  });

  const as = (token: string | undefined, method: "GET" | "POST" | "PATCH", url: string, payload?: object) =>
    app.inject({ method, url: `/api/v1${url}`, headers: token ? { authorization: `Bearer ${tokens[token]}` } : {}, ...(payload ? { payload } : {}) });
  const events = async (query: string) => {
    const res = await as("a1", "GET", `/eventLogs?${query}&limit=1000`);
    expect(res.statusCode).toBe(200);
    return res.json().event_logs as Record<string, unknown>[];
  };

  it("owns a token's refusals and changes alike, as token:<name>, with null ids where there are none", async () => {
    expect((await as("o1", "POST", "/dags/owned/dagRuns", { dag_run_id: "r1" })).statusCode).toBe(200);
    expect((await as("o1", "PATCH", "/dags/owned/dagRuns/r1", { state: "failed" })).statusCode).toBe(200);
    expect((await as("v1", "PATCH", "/dags/owned/dagRuns/r1", { state: "success" })).statusCode).toBe(403);
    expect((await as("o1", "POST", "/pools", { name: "p", slots: 1 })).statusCode).toBe(403);
    expect((await as(undefined, "GET", "/dags")).statusCode).toBe(401);

    const refused = await events("event=auth:forbidden");
    expect(refused.map((e) => e.owner)).toEqual(["token:v1", "token:o1"]);
    for (const e of refused) expect(e).toMatchObject({ dag_id: null, dag_run_id: null, run_id: null, task_id: null });
    const anonymous = await events("event=auth:unauthenticated");
    expect(anonymous).toEqual([expect.objectContaining({ owner: "anonymous", dag_id: null, run_id: null })]);
    expect((await as("a1", "GET", `/eventLogs/${refused[0]!.event_log_id}`)).json()).toMatchObject({ owner: "token:v1", dag_id: null, dag_run_id: null, run_id: null });

    // One owner filter finds what a token did and what it was refused.
    expect((await events("owner=token:o1")).map((e) => e.event)).toEqual(["run:queued", "run:failed", "auth:forbidden"]);
    expect((await events("owner=token:v1")).map((e) => e.event)).toEqual(["auth:forbidden"]);
    // A run's events keep their ids.
    expect((await events("owner=token:o1&event=run:failed"))[0]).toMatchObject({ dag_id: "owned", dag_run_id: "r1", run_id: "r1" });
  });

  // event_log.actor held 255 characters: a 250-character token's entries were owned by its name
  // cut short (that of the 249-character token "k…k", which the filter then also found), and
  // ?owner= refused the whole name as over 255 characters.
  it("owns what a token with a 250-character name did and was refused by its whole name", async () => {
    expect((await as(LONGEST, "POST", "/dags/owned/dagRuns", { dag_run_id: "by_longest" })).statusCode).toBe(200);
    expect((await as(LONGEST, "POST", "/pools", { name: "q", slots: 1 })).statusCode).toBe(403);
    expect((await as(LONGEST.slice(1), "POST", "/pools", { name: "q", slots: 1 })).statusCode).toBe(403);
    expect((await events(`owner=token:${LONGEST}`)).map((e) => [e.event, e.owner])).toEqual([
      ["run:queued", `token:${LONGEST}`],
      ["auth:forbidden", `token:${LONGEST}`],
    ]);
    expect((await events(`owner=token:${LONGEST.slice(1)}`)).map((e) => e.event)).toEqual(["auth:forbidden"]);
  });
});
