// parse: 1,000 generated DAG files of 10 tasks each, on `baton standalone` (migrations applied
// beforehand, so only the start-up and the parse are timed).
//   cold_s            process spawned → all 1,000 DAGs stored in the `dag` table
//   edit_visible_ms   one file rewritten → GET /api/v1/dags/{id} shows its new latest_version
//                     (median of 5 edits of different files; max reported too)
//   rss_*_mb          RSS of the standalone process after the cold parse and after each of 10
//                     rounds re-parsing all 1,000 files (each round changes every description)
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { cpuMetrics, cpuNote, databaseServerPid, meterCpu } from "./cpu.ts";
import { PARSE_DAG } from "./dags.ts";
import {
  environment,
  freePort,
  freshDatabase,
  logNotes,
  median,
  migrateDatabase,
  round,
  rssMb,
  serverVersion,
  spawnBaton,
  waitFor,
  waitForHealth,
  workspace,
  writeResult,
  type BatonProcess,
  AUTH,
} from "./lib.ts";

const FILES = 1000;
const TASKS = 10;
const ROUNDS = 10;
const EDITS = 5;
/** The whole benchmark stays under two minutes: re-parse rounds stop when the next would not fit. */
const BUDGET_MS = 115_000;

const fileOf = (i: number) => `dag_${String(i).padStart(4, "0")}.ts`;
const idOf = (i: number) => `bench_parse_${String(i).padStart(4, "0")}`;

export async function parse(): Promise<void> {
  const benchStarted = performance.now();
  const db = await freshDatabase("parse");
  const files: Record<string, string> = {};
  for (let i = 0; i < FILES; i++) files[fileOf(i)] = PARSE_DAG(idOf(i), TASKS, "round 0");
  const ws = await workspace(files);
  let baton: BatonProcess | undefined;
  try {
    await migrateDatabase(db);
    const countWith = async (description: string) => {
      const [[row]] = (await db.pool.query("SELECT COUNT(*) AS n FROM dag WHERE description = ? AND latest_version_hash IS NOT NULL", [
        description,
      ])) as unknown as [{ n: number }[]];
      return Number(row!.n);
    };
    const port = freePort();
    const spawned = performance.now();
    baton = spawnBaton("standalone", ["standalone"], db, ws, { BATON_PORT: String(port), BATON_WORKERS: "1" });
    const proc = baton;
    const cpuParts = { baton: proc.pid, mariadb: databaseServerPid(), bench: "self" as const };
    const coldMeter = meterCpu(cpuParts);
    await waitFor(`${FILES} DAGs parsed`, 100_000, async () => {
      if (proc.process.exitCode !== null) throw new Error(`baton standalone exited with ${proc.process.exitCode}; see ${proc.logFile}`);
      return (await countWith("round 0")) === FILES;
    }, 20);
    const coldS = (performance.now() - spawned) / 1000;
    const coldCpu = coldMeter.stop();
    await waitForHealth(port, baton);
    const rssCold = await rssMb(baton.pid);

    // One edited file until the API shows its new version.
    const latest = async (dagId: string) => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/dags/${dagId}`, { headers: AUTH });
      return ((await res.json()) as { latest_version: string }).latest_version;
    };
    const edits: number[] = [];
    for (let e = 0; e < EDITS; e++) {
      const i = 100 * e + 7;
      const before = await latest(idOf(i));
      const started = performance.now();
      await writeFile(path.join(ws.dagsFolder, fileOf(i)), PARSE_DAG(idOf(i), TASKS + 1, `edit ${e}`));
      await waitFor(`the edit of ${fileOf(i)}`, 30_000, async () => (await latest(idOf(i))) !== before, 5);
      edits.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, 300)); // let the processor settle between edits
    }

    // Re-parse everything ROUNDS times; RSS after each round.
    const rss: number[] = [];
    const roundSeconds: number[] = [];
    const problems: string[] = [];
    let peak = rssCold;
    const roundsMeter = meterCpu(cpuParts);
    for (let r = 1; r <= ROUNDS; r++) {
      const started = performance.now();
      const longest = Math.max(0, ...roundSeconds) * 1000;
      if (started - benchStarted + longest * 1.2 > BUDGET_MS) break;
      for (let i = 0; i < FILES; i++) await writeFile(path.join(ws.dagsFolder, fileOf(i)), PARSE_DAG(idOf(i), TASKS, `round ${r}`));
      let seen = 0;
      await waitFor(`re-parse round ${r}`, Math.max(5000, BUDGET_MS - (started - benchStarted)), async () => {
        peak = Math.max(peak, await rssMb(proc.pid));
        seen = await countWith(`round ${r}`);
        return seen === FILES;
      }, 50).catch((err: Error) => {
        problems.push(`${err.message}: ${seen} of ${FILES} DAGs showed the new version`);
        return false;
      });
      if (seen !== FILES) break;
      roundSeconds.push((performance.now() - started) / 1000);
      rss.push(await rssMb(baton.pid));
    }
    const roundsCpu = roundsMeter.stop();
    await writeResult({
      name: "parse",
      metrics: {
        cold_s: round(coldS),
        edit_visible_ms: round(median(edits), 0),
        edit_visible_max_ms: round(Math.max(...edits), 0),
        reparse_round_s: round(median(roundSeconds)),
        rss_after_cold_mb: round(rssCold, 0),
        rss_after_round_1_mb: round(rss[0] ?? Number.NaN, 0),
        rss_after_last_round_mb: round(rss[rss.length - 1] ?? Number.NaN, 0),
        rss_growth_first_to_last_round_mb: round((rss[rss.length - 1] ?? Number.NaN) - (rss[0] ?? Number.NaN), 0),
        rss_peak_mb: round(peak, 0),
        reparse_rounds_done: rss.length,
        // Re-parse rounds: the CPU a file costs (baton = the standalone and its parser children).
        ...cpuMetrics(roundsCpu, Math.max(1, rss.length) * FILES, "file"),
      },
      targets: { cold_s: 10, edit_visible_ms: 1000, rss_peak_mb: 250, reparse_rounds_done: ROUNDS },
      env: environment({ version: await serverVersion(db) }),
      notes: [
        `${FILES} files × ${TASKS} tasks; cold_s includes starting Node and the standalone process (migrations were applied before)`,
        ...(rss.length < ROUNDS && problems.length === 0 ? [`only ${rss.length} of ${ROUNDS} re-parse rounds fit in the 2-minute budget`] : []),
        ...problems.map((p) => `PROBLEM: ${p}`),
        `RSS (MB) of the standalone process after each re-parse round: ${rss.map((v) => round(v, 0)).join(", ")}; parser children are separate processes and not counted`,
        `edits (ms): ${edits.map((v) => round(v, 0)).join(", ")}`,
        cpuNote("the cold parse (baton = the standalone process starting, and its parser children)", coldCpu, FILES, "file"),
        cpuNote(`${rss.length} re-parse rounds`, roundsCpu, Math.max(1, rss.length) * FILES, "file"),
        ...(await logNotes([baton])),
      ],
    });
  } finally {
    await baton?.stop();
    await ws.remove();
    await db.drop();
  }
}
