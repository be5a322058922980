// What a task waiting for a signal waits for, through the API: the TaskInstance JSON of every
// endpoint that answers one (GET one, the run's list, `~/~`, the batch list) carries
// waiting_for_signal and signal_timeout_at while the task is deferred (null otherwise, and once the
// signal came; `baton tasks show` prints them), and GET …/dependencies explains the wait. The clock is fake and the scheduler
// ticks only when told, so the deadline is exact and a passed timeout stays unapplied until a tick.
import { FakeClock } from "../../core/clock.ts";
import { runBaton } from "../helpers/cli.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const DAGS = dagSource(`
export const waits = dag({ id: "waits" }, (t) => {
  const prepare = t.task("prepare", async () => "doc-1");
  const signed = t.waitForSignal("wait_signed", { signal: "signed", timeout: "5d", onTimeout: "skip" });
  prepare.then(signed).then(t.task("file", async (ctx) => ctx.get(signed)));
  t.waitForSignal("wait_go", { signal: "go" });
});
`);

const START = "2026-11-27T10:00:00.000Z";
const DEADLINE = "2026-12-02T10:00:00.000Z"; // START + 5d

describe("a task waiting for a signal, through the API", () => {
  const clock = new FakeClock(START);
  const h = new Harness({ workers: 1, clock, manualTicks: true, runIds: "numbered" });
  const base = (runId: string) => `/api/v1/dags/waits/dagRuns/${encodeURIComponent(runId)}/taskInstances`;
  const get = async (url: string) => {
    const res = await h.app.inject({ method: "GET", url });
    expect(res.statusCode).toBe(200);
    return res.json();
  };
  const waitFields = (ti: { task_id: string; waiting_for_signal?: unknown; signal_timeout_at?: unknown }) => [
    ti.task_id,
    ti.waiting_for_signal,
    ti.signal_timeout_at,
  ];
  const deferred = (runId: string, taskIds: string[]) =>
    waitFor(`${taskIds.join(", ")} to defer`, async () => {
      const { task_instances: tis } = await get(`${base(runId)}?state=deferred`);
      return taskIds.every((id) => tis.some((t: { task_id: string }) => t.task_id === id));
    });

  beforeAll(async () => {
    await h.start({ "waits.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  it("shows the signal and the deadline while waiting, in every TaskInstance answer; null once it came", async () => {
    const runId = await h.trigger("waits", { tick: true });
    await deferred(runId, ["wait_signed", "wait_go"]);
    const expected = [
      ["prepare", null, null],
      ["wait_signed", "signed", DEADLINE],
      ["file", null, null],
      ["wait_go", "go", null],
    ];
    const byTask = (list: { task_id: string }[]) => expected.map(([id]) => waitFields(list.find((t) => t.task_id === id)!));

    for (const [id, signal, deadline] of expected) expect(waitFields(await get(`${base(runId)}/${id}`))).toEqual([id, signal, deadline]);
    expect(byTask((await get(base(runId))).task_instances)).toEqual(expected);
    expect(byTask((await get(`/api/v1/dags/~/dagRuns/~/taskInstances`)).task_instances)).toEqual(expected);
    const batch = await h.app.inject({ method: "POST", url: "/api/v1/dags/~/dagRuns/~/taskInstances/list", payload: { dag_ids: ["waits"] } });
    expect(byTask(batch.json().task_instances)).toEqual(expected);
    // `baton tasks show` prints them as it prints every field.
    const shown = await runBaton(["tasks", "show", "waits", runId, "wait_signed"], { BATON_DATABASE_URL: h.db.url, BATON_LOGS_FOLDER: h.logsFolder });
    expect(shown).toMatchObject({ code: 0, stderr: "" });
    expect(shown.stdout).toMatch(/^waiting_for_signal +signed$/m);
    expect(shown.stdout).toMatch(new RegExp(`^signal_timeout_at +${DEADLINE}$`, "m"));

    const sent = await h.app.inject({ method: "POST", url: `/api/v1/dags/waits/dagRuns/${encodeURIComponent(runId)}/signals/signed`, payload: { payload: { by: "ana" } } });
    expect(sent.json()).toMatchObject({ delivered_to: "wait_signed" });
    const ended = await get(`${base(runId)}/wait_signed`);
    expect([ended.state, ...waitFields(ended)]).toEqual(["success", "wait_signed", null, null]);
    expect(waitFields(await get(`${base(runId)}/wait_go`))).toEqual(["wait_go", "go", null]);
  });

  it("GET …/dependencies explains a wait: its signal, its deadline and what happens then", async () => {
    const runId = await h.trigger("waits", { tick: true });
    await deferred(runId, ["wait_signed", "wait_go"]);
    const deps = async (taskId: string) => (await get(`${base(runId)}/${taskId}/dependencies`)).dependencies;

    expect(await deps("wait_signed")).toEqual([
      {
        name: "signal",
        reason: `waiting for signal "signed" (POST /api/v1/dags/waits/dagRuns/${encodeURIComponent(runId)}/signals/signed) until ${DEADLINE}; then it is skipped`,
      },
    ]);
    expect(await deps("wait_go")).toEqual([{ name: "signal", reason: `waiting for signal "go" (POST /api/v1/dags/waits/dagRuns/${encodeURIComponent(runId)}/signals/go), with no timeout` }]);

    // The deadline passed, and no scheduler tick has ended the wait yet.
    clock.set("2026-12-02T10:00:01.000Z");
    expect(await deps("wait_signed")).toEqual([
      {
        name: "signal",
        reason:
          `waited for signal "signed" until ${DEADLINE}, which has passed: the scheduler skips it at its next pass, ` +
          "and a signal sent now is too late for it",
      },
    ]);
    await h.scheduler.tick();
    const skipped = await get(`${base(runId)}/wait_signed`);
    expect([skipped.state, ...waitFields(skipped)]).toEqual(["skipped", "wait_signed", null, null]);
    expect(await deps("wait_signed")).toEqual([]);
  });
});
