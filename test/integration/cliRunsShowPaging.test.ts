// `baton runs show` on a run of more task instances than one API page (1,000): it read the first page
// only, so a wide run's tasks past the 1,000th were missing from the table and from the JSON.
import { Harness, dagSource } from "../helpers/harness.ts";
import { runBaton } from "../helpers/cli.ts";
import type { RowDataPacket } from "../../store/db.ts";

const TASKS = 1_005;

const DAGS = dagSource(`
export default dag({ id: "cli_wide" }, (t) => {
  for (let i = 0; i < ${TASKS}; i++) t.task(\`t\${String(i).padStart(4, "0")}\`, async () => i);
});
`);

describe("baton runs show on a run wider than one page", () => {
  const h = new Harness({ worker: false, manualTicks: true });
  let env: Record<string, string>;
  let runId = "";

  beforeAll(async () => {
    await h.start({ "wide.ts": DAGS });
    await h.processor.scan();
    runId = await h.trigger("cli_wide", { runId: "wide_1", tick: true });
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = 'cli_wide' AND run_id = ?", [runId]);
    expect(Number(row!.n)).toBe(TASKS);
    env = { BATON_DATABASE_URL: h.db.url, BATON_LOGS_FOLDER: h.logsFolder, BATON_CACHE_FOLDER: h.cacheFolder, BATON_LOG_LEVEL: "warn" };
  }, 120_000);
  afterAll(() => h.stop());

  it("lists every task instance, in the table and in the JSON", async () => {
    const [table, json] = await Promise.all([
      runBaton(["runs", "show", "cli_wide", runId], env, 60_000),
      runBaton(["-o", "json", "runs", "show", "cli_wide", runId], env, 60_000),
    ]);
    expect({ code: table.code, stderr: table.stderr }).toEqual({ code: 0, stderr: "" });
    const taskRows = table.stdout.split("\n").filter((l) => /^t\d{4}\s/.test(l));
    expect(taskRows).toHaveLength(TASKS);
    expect(taskRows.at(-1)).toMatch(/^t1004\s/);

    expect({ code: json.code, stderr: json.stderr }).toEqual({ code: 0, stderr: "" });
    const ids = (JSON.parse(json.stdout) as { task_instances: { task_id: string }[] }).task_instances.map((t) => t.task_id);
    expect(ids).toHaveLength(TASKS);
    expect(new Set(ids).size).toBe(TASKS);
  }, 120_000);
});
