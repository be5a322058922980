import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { dropDatabase, openDb, type Db, type RowDataPacket } from "../../store/db.ts";
import { createTestDb, waitFor } from "../helpers/db.ts";
import { BIN, cleanEnv, ROOT } from "../helpers/cli.ts";
import { capturingLogger } from "../helpers/logger.ts";
import { jest } from "@jest/globals";
import { dagsTest } from "../../cli/dagsTest.ts";
import { loadConfig } from "../../core/config.ts";


interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Every process this file starts, so afterAll can kill whatever is still alive. */
const spawned = new Set<ChildProcess>();

/** Starts `node bin/baton.js ...args`, collecting its output. */
function start(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  spawned.add(child);
  const out = { stdout: "", stderr: "" };
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out.stderr += d));
  const exited = new Promise<Finished>((resolve) => {
    child.once("close", (code, signal) => {
      spawned.delete(child);
      resolve({ code, signal, ...out });
    });
  });
  return { child, out, exited };
}

/** Resolves with the process's end, or rejects (and kills it) after timeoutMs. */
async function finishWithin(p: ReturnType<typeof start>, timeoutMs: number, what: string): Promise<Finished> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.child.kill("SIGKILL");
      reject(new Error(`${what} did not exit within ${timeoutMs} ms\nstdout:\n${p.out.stdout}\nstderr:\n${p.out.stderr}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([p.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function baton(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<Finished> {
  return finishWithin(start(args, env), timeoutMs, `baton ${args.join(" ")}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A fresh, migrated database whose pool is closed: the CLI process owns the connections. */
async function freshDatabaseUrl(): Promise<string> {
  const db = await createTestDb();
  await db.close();
  return db.url;
}

afterAll(() => {
  for (const child of spawned) child.kill("SIGKILL");
});

describe("baton CLI without a reachable MySQL", () => {
  const closed = { BATON_DATABASE_URL: "mysql://root:s3cret-pw@127.0.0.1:1/baton" };

  it.concurrent.each([
    ["dags list", ["dags", "list"]],
    ["dags trigger", ["dags", "trigger", "some_dag"]],
    ["db migrate", ["db", "migrate"]],
    ["dags test", ["dags", "test", "some_dag"]],
    ["standalone", ["standalone"]],
  ])("%s exits non-zero with one line naming the URL and how to start MySQL, no stack trace", async (_name, args) => {
    const r = await baton(args, closed);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("127.0.0.1:1/baton");
    expect(lines[0]).toMatch(/MySQL\/MariaDB/);
    expect(lines[0]).toMatch(/start/i);
    expect(lines[0]).toContain("BATON_DATABASE_URL");
    expect(r.stderr).not.toContain("    at ");
    expect(r.stderr).not.toContain("s3cret-pw");
    expect(r.stdout).toBe("");
  });
});

describe("baton --help", () => {
  it("lists the commands and exits 0", async () => {
    const r = await baton(["--help"], {});
    expect(r.code).toBe(0);
    // The processes of DESIGN.md "Processes", plus maintenance and DAG commands.
    for (const command of ["standalone", "scheduler", "worker", "api", "dag-processor", "db", "dags"]) {
      expect(r.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, "m"));
    }
    expect(r.stdout).toContain("BATON_DATABASE_URL");

    const sub = await baton(["dags", "--help"], {});
    expect(sub.code).toBe(0);
    for (const command of ["list", "trigger", "test"]) expect(sub.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, "m"));
  });
});

const QUICK_DAGS = `import { dag, FailError } from "baton";
export default dag({ id: "cli_ok" }, (t) => {
  const first = t.task("first", async () => 20);
  t.task("second", { upstream: [first] }, async (ctx) => ctx.get(first) + 22);
});
export const broken = dag({ id: "cli_bad" }, (t) => {
  const fine = t.task("fine", async () => 1);
  t.task("boom", { upstream: [fine] }, async () => { throw new FailError("boom on purpose"); });
});
`;

/** A DAG whose one task is on queue "gpu", not "default". */
const GPU_DAG = (id: string) => `import { dag } from "baton";
export default dag({ id: "${id}" }, (t) => {
  t.task("render", { queue: "gpu" }, async () => "rendered");
});
`;

describe("baton dags test", () => {
  let url: string;
  let root: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    url = await freshDatabaseUrl();
    root = await mkdtemp(path.join(os.tmpdir(), "baton-cli-"));
    await mkdir(path.join(root, "dags"));
    await writeFile(path.join(root, "dags", "quick.ts"), QUICK_DAGS);
    env = {
      BATON_DATABASE_URL: url,
      BATON_DAGS_FOLDER: path.join(root, "dags"),
      BATON_LOGS_FOLDER: path.join(root, "logs"),
      BATON_CACHE_FOLDER: path.join(root, "cache"),
      BATON_LOG_LEVEL: "warn",
    };
  });
  afterAll(async () => {
    if (url) await dropDatabase(url);
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("prints each task's final state and exits 0 when the run succeeds", async () => {
    const r = await baton(["dags", "test", "cli_ok"], env);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(/cli_ok: success/);
    expect(r.stdout).toMatch(/^\s+first\s+success\b/m);
    expect(r.stdout).toMatch(/^\s+second\s+success\b/m);
  });

  it("exits 1 and shows the failed task when a task fails", async () => {
    const r = await baton(["dags", "test", "cli_bad"], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/cli_bad: failed/);
    expect(r.stdout).toMatch(/^\s+fine\s+success\b/m);
    expect(r.stdout).toMatch(/^\s+boom\s+failed\b/m);
    expect(r.stderr).not.toContain("    at ");
  });

  // Airflow's `dags test` prints the failure's traceback: "failed" alone sent the author to the log.
  it("prints a failed task's error (class and message) under its line", async () => {
    const r = await baton(["dags", "test", "cli_bad"], env);
    expect(r.code).toBe(1);
    const lines = r.stdout.split("\n");
    const boom = lines.findIndex((l) => /^\s+boom\s+failed\b/.test(l));
    expect(boom).toBeGreaterThan(0);
    expect(lines[boom + 1]).toMatch(/^\s+FailError: boom on purpose$/);
    expect(r.stdout).toContain(`baton tasks logs cli_bad `);
  });

  it("prints the run and its task instances as one JSON document under --output json", async () => {
    const r = await baton(["--output", "json", "dags", "test", "cli_bad"], env);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as { dag_id: string; dag_run_id: string; state: string; task_instances: { task_id: string; state: string; error: unknown }[] };
    expect(doc).toMatchObject({ dag_id: "cli_bad", state: "failed" });
    expect(doc.dag_run_id).toMatch(/^test__/);
    const byTask = Object.fromEntries(doc.task_instances.map((t) => [t.task_id, t]));
    expect(byTask.fine).toMatchObject({ state: "success", error: null });
    expect(byTask.boom).toMatchObject({ state: "failed", error: { name: "FailError", message: "boom on purpose" } });
  });

  // Was: the parser and task children inherited stdout, so a DAG file's top-level print came before
  // the document and `JSON.parse` of the output failed.
  it("keeps --output json pure JSON when the DAG file and its task print on their own", async () => {
    const file = path.join(root, "dags", "chatty.ts");
    await writeFile(
      file,
      `import { dag } from "baton";\nconsole.log("chatty file loading");\nprocess.stdout.write("raw write at import\\n");\n` +
        `export default dag({ id: "cli_chatty" }, (t) => { t.task("talk", async () => { setTimeout(() => process.stdout.write("late line after the try\\n"), 0); return 1; }); });\n`,
    );
    try {
      const r = await baton(["--output", "json", "dags", "test", "cli_chatty"], env);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ dag_id: "cli_chatty", state: "success", task_instances: [{ task_id: "talk", state: "success" }] });
      expect(r.stderr).toContain("chatty file loading");
    } finally {
      await rm(file, { force: true });
    }
  });

  it("names an unknown DAG in one line and exits non-zero", async () => {
    const r = await baton(["dags", "test", "no_such_dag"], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringContaining("BATON_DAG_NOT_FOUND")]);
  });

  // Airflow's `dags test` loads the file as it is now: one that no longer imports fails the command.
  // Running the last version that parsed would report on code the author no longer has.
  it("refuses a DAG whose file no longer imports, naming the import error, instead of running its last version", async () => {
    const file = path.join(root, "dags", "edited.ts");
    await writeFile(file, `import { dag } from "baton";\nexport default dag({ id: "cli_edited" }, (t) => { t.task("only", async () => 1); });\n`);
    expect((await baton(["dags", "test", "cli_edited"], env)).code).toBe(0);

    await writeFile(file, `import { dag } from "baton";\nexport default dag({ id: "cli_edited" }, (t) => {\n  t.task("only", async () => 1);\n  throw new Error("half-written edit");\n});\n`);
    const r = await baton(["dags", "test", "cli_edited"], env);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toMatch(/cli_edited: success/);
    // After the DAG processor's own warning about the file.
    expect(r.stderr.trim().split("\n").at(-1)).toEqual(`baton: BATON_DAG_IMPORT_ERROR: DAG "cli_edited" is defined in ${file}, which does not import now (line 4): Error: half-written edit`);
  });

  // The stored version is not the file as it is now when the file cannot be read: say why, in one line.
  it("refuses a DAG whose folder cannot be read (an unmounted volume), naming the folder", async () => {
    const dags = path.join(root, "dags");
    expect((await baton(["dags", "test", "cli_ok"], env)).code).toBe(0);
    await rename(dags, `${dags}.unmounted`);
    try {
      const r = await baton(["dags", "test", "cli_ok"], env);
      expect(r.code).toBe(1);
      expect(r.stdout).not.toMatch(/cli_ok: success/);
      expect(r.stderr.trim().split("\n").at(-1)).toMatch(
        new RegExp(`^baton: BATON_DAGS_FOLDER_UNREADABLE: DAG "cli_ok" is defined in ${dags}/quick\\.ts, which cannot be read now: .*ENOENT`),
      );
    } finally {
      await rename(`${dags}.unmounted`, dags);
    }
  });

  // The processor keeps the whole folder of an ignore file it cannot read as it was (without its rules
  // the folder would list files meant to be ignored); dags test matched only the ignore file's own path.
  it("refuses a DAG whose folder's .batonignore cannot be read, naming the ignore file", async () => {
    const team = path.join(root, "dags", "team");
    await mkdir(team);
    await writeFile(path.join(team, "job.ts"), `import { dag } from "baton";\nexport default dag({ id: "cli_team" }, (t) => { t.task("only", async () => 1); });\n`);
    try {
      expect((await baton(["dags", "test", "cli_team"], env)).code).toBe(0);
      await symlink(path.join(team, ".batonignore"), path.join(team, ".batonignore")); // ELOOP, even for root
      const r = await baton(["dags", "test", "cli_team"], env);
      expect(r.code).toBe(1);
      expect(r.stdout).not.toMatch(/cli_team: success/);
      expect(r.stderr.trim().split("\n").at(-1)).toMatch(
        new RegExp(`^baton: BATON_DAGS_FOLDER_UNREADABLE: DAG "cli_team" is defined in ${team}/job\\.ts, which cannot be read now: ELOOP.*\\.batonignore`),
      );
    } finally {
      await rm(team, { recursive: true, force: true });
    }
  });

  // A DAG file it cannot read (EACCES) keeps its DAGs on their last version without an import error:
  // dags test ran that version. In this process: root reads every file, so the failure is injected.
  it("refuses a DAG whose file cannot be read now, naming the file's error", async () => {
    const file = path.join(root, "dags", "locked.ts");
    await writeFile(file, `import { dag } from "baton";\nexport default dag({ id: "cli_locked" }, (t) => { t.task("only", async () => 1); });\n`);
    const db = await openDb(url);
    const stderr: string[] = [];
    const write = jest.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => (stderr.push(String(chunk)), true));
    const exit = jest.spyOn(process, "exit").mockImplementation((code?: string | number | null) => {
      throw new Error(`exit ${code}`);
    });
    try {
      expect((await baton(["dags", "test", "cli_locked"], env)).code).toBe(0);
      const readFileFailing = (async (p: string, ...rest: unknown[]) => {
        if (p === file) throw Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: "EACCES" });
        return (readFile as (...a: unknown[]) => Promise<unknown>)(p, ...rest);
      }) as typeof readFile;
      const runtime = { config: loadConfig(env), db, logger: capturingLogger([]) };
      await expect(dagsTest(runtime, "cli_locked", {}, { discoverFs: { readFile: readFileFailing } })).rejects.toThrow("exit 1");
      expect(stderr.join("").trim().split("\n").at(-1)).toBe(
        `baton: BATON_DAGS_FOLDER_UNREADABLE: DAG "cli_locked" is defined in ${file}, which cannot be read now: EACCES: permission denied, open '${file}'`,
      );
    } finally {
      write.mockRestore();
      exit.mockRestore();
      await db.close();
      await rm(file, { force: true });
    }
  });

  // Airflow's `dags test` runs every task in its own process, whatever its queue. Its worker served
  // only `default`: a task on another queue stayed queued and the command waited for ever.
  it("runs a task on a queue other than default (it waited for ever)", async () => {
    await writeFile(path.join(root, "dags", "gpu.ts"), GPU_DAG("cli_gpu"));
    const r = await baton(["dags", "test", "cli_gpu"], env, 20_000);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(/^\s+render\s+success\b/m);
  });

  // A worker already serving the database (`npm start` left running, a `baton worker`) may claim the
  // test run's tasks: the command waited for its own worker to finish the run, and hung for ever.
  it("ends when another worker on the same database runs the test run's tasks (it hung)", async () => {
    await writeFile(path.join(root, "dags", "gpu_ext.ts"), GPU_DAG("cli_gpu_ext"));
    const db = openDb(url, { connectionLimit: 1 });
    const other = start(["worker", "--queues", "gpu", "--concurrency", "1"], env);
    try {
      await waitFor("the other worker to register", async () => {
        const [rows] = await db.pool.query<RowDataPacket[]>("SELECT 1 FROM baton_process WHERE kind = 'worker' AND pid = ?", [other.child.pid]);
        return rows.length > 0;
      }, 20_000);
      const r = await baton(["dags", "test", "cli_gpu_ext"], env, 20_000);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      expect(r.stdout).toMatch(/cli_gpu_ext: success/);
      expect(r.stdout).toMatch(/^\s+render\s+success\b/m);
    } finally {
      other.child.kill("SIGKILL");
      await other.exited;
      await db.close();
    }
  });

  // `baton worker` and `standalone` derive their worker's settings from the configuration; dags test
  // built its own list without BATON_XCOM_MAX_BYTES (and the kill grace, the heartbeat timeout), so a
  // return value over the configured cap succeeded in the test and failed once deployed.
  it("applies BATON_XCOM_MAX_BYTES as the services do: a return value over it fails the task", async () => {
    const file = path.join(root, "dags", "big.ts");
    await writeFile(file, `import { dag } from "baton";\nexport default dag({ id: "cli_big" }, (t) => { t.task("large", async () => "x".repeat(500)); });\n`);
    try {
      const r = await baton(["dags", "test", "cli_big"], { ...env, BATON_XCOM_MAX_BYTES: "100" });
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^\s+large\s+failed\b/m);
      expect(r.stdout).toMatch(/over the 100-byte cap \(BATON_XCOM_MAX_BYTES\)/);
    } finally {
      await rm(file, { force: true });
    }
  });

  // Airflow's `dags test` runs a paused DAG. Here the run is created but never started
  // (startRuns skips paused DAGs) and dagsTest waits for it without a deadline.
  it("does not hang on a paused DAG: runs it, or refuses in one line naming the pause", async () => {
    const db = openDb(url, { connectionLimit: 1 });
    try {
      await db.pool.query("UPDATE dag SET is_paused = 1 WHERE dag_id = 'cli_ok'");
      const r = await baton(["dags", "test", "cli_ok"], env, 8_000);
      if (r.code === 0) expect(r.stdout).toMatch(/cli_ok: success/);
      else expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/paused/i)]);
    } finally {
      await db.pool.query("UPDATE dag SET is_paused = 0 WHERE dag_id = 'cli_ok'");
      await db.close();
    }
  });
});

/** A DAG whose one task naps `ms`; with `startedFile`, it first creates that file (proof its try started in a task process). */
const SLEEP_DAG = (id: string, ms: number, startedFile?: string) => `import { dag } from "baton";
import { writeFileSync } from "node:fs";
export default dag({ id: "${id}" }, (t) => {
  t.task("nap", async () => {
    ${startedFile ? `writeFileSync(${JSON.stringify(startedFile)}, "");` : ""}
    await new Promise((r) => setTimeout(r, ${ms}));
    return "rested";
  });
});
`;

describe("baton standalone", () => {
  let url: string;
  let root: string;
  let dagsFolder: string;
  let db: Db;

  beforeAll(async () => {
    url = await freshDatabaseUrl();
    db = openDb(url, { connectionLimit: 2 });
    root = await mkdtemp(path.join(os.tmpdir(), "baton-standalone-"));
    dagsFolder = path.join(root, "dags");
    await mkdir(dagsFolder);
    await writeFile(path.join(dagsFolder, "quick.ts"), QUICK_DAGS);
    await writeFile(path.join(dagsFolder, "sleepy.ts"), SLEEP_DAG("sleepy", 1000, path.join(root, "sleepy-started")));
    await writeFile(path.join(dagsFolder, "long_nap.ts"), SLEEP_DAG("long_nap", 60_000));
  });
  afterAll(async () => {
    for (const child of spawned) child.kill("SIGKILL");
    await db?.close();
    if (url) await dropDatabase(url);
    if (root) await rm(root, { recursive: true, force: true });
  });

  function envFor(port: number, extra: Record<string, string> = {}): Record<string, string> {
    return {
      BATON_DATABASE_URL: url,
      BATON_DAGS_FOLDER: dagsFolder,
      BATON_LOGS_FOLDER: path.join(root, "logs"),
      BATON_CACHE_FOLDER: path.join(root, "cache"),
      BATON_PORT: String(port),
      BATON_WORKERS: "2",
      BATON_LOG_LEVEL: "info",
      // Auth is on by default: the first start writes an admin token here (and prints it once).
      BATON_ADMIN_TOKEN_FILE: path.join(root, ".baton", "admin-token"),
      ...extra,
    };
  }

  let adminToken: string | undefined;
  async function api(port: number, method: string, route: string, body?: unknown) {
    adminToken ??= (await readFile(path.join(root, ".baton", "admin-token"), "utf8").catch(() => "")).trim() || undefined;
    const res = await fetch(`http://127.0.0.1:${port}/api/v1${route}`, {
      method,
      headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...(adminToken ? { authorization: `Bearer ${adminToken}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  }

  async function trigger(port: number, dagId: string): Promise<string> {
    const res = await api(port, "POST", `/dags/${dagId}/dagRuns`, {});
    expect(res.status).toBe(200);
    return res.json.dag_run_id as string;
  }

  async function taskRow(dagId: string, runId: string): Promise<RowDataPacket | undefined> {
    const [rows] = await db.pool.query<RowDataPacket[]>("SELECT state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = 'nap'", [
      dagId,
      runId,
    ]);
    return rows[0];
  }

  /** Starts the standalone and waits for its API; `firstHealth` is the first answer GET /health gave. */
  async function startStandalone(port: number, extra: Record<string, string> = {}) {
    const p = start(["standalone"], envFor(port, extra));
    let firstHealth: Awaited<ReturnType<typeof api>> | undefined;
    await waitFor(
      `GET /api/v1/health on port ${port}`,
      async () => {
        if (p.child.exitCode !== null) throw new Error(`standalone exited with ${p.child.exitCode}: ${p.out.stderr}`);
        const health = await api(port, "GET", "/health");
        firstHealth ??= health;
        return health.status === 200;
      },
      20_000,
      100,
    );
    return { ...p, firstHealth: firstHealth! };
  }

  it("serves the API, runs a triggered DAG, picks up a new DAG file, and finishes its task on SIGTERM", async () => {
    const port = await freePort();
    const p = await startStandalone(port);
    try {
      // The scheduler wrote its first heartbeat before the API listened: a load balancer's first
      // probe does not see it unhealthy.
      expect(p.firstHealth.status).toBe(200);
      expect(p.firstHealth.json.scheduler).toMatchObject({ status: "healthy", latest_scheduler_heartbeat: expect.any(String) });
      // A run triggered over HTTP reaches success.
      const runId = await trigger(port, "cli_ok");
      const state = await waitFor(
        "cli_ok run to finish",
        async () => {
          const r = await api(port, "GET", `/dags/cli_ok/dagRuns/${encodeURIComponent(runId)}`);
          return ["success", "failed"].includes(r.json.state) ? (r.json.state as string) : null;
        },
        15_000,
        50,
      );
      expect(state).toBe("success");
      // The first start created an admin token and printed it once; without it the API refuses.
      expect(p.out.stdout).toContain(adminToken);
      const anonymous = await fetch(`http://127.0.0.1:${port}/api/v1/dags`);
      expect(anonymous.status).toBe(401);

      // A file copied into the folder is listed within 10 s (watcher or periodic rescan).
      await writeFile(path.join(dagsFolder, "arrived_later.ts"), SLEEP_DAG("arrived_later", 1));
      await waitFor(
        "arrived_later to be listed by GET /api/v1/dags",
        async () => ((await api(port, "GET", "/dags")).json.dags as { dag_id: string }[]).some((d) => d.dag_id === "arrived_later"),
        10_000,
        100,
      );

      // SIGTERM while a 1 s task runs: exit 0 within 10 s, and the task is not left running.
      const sleepyRun = await trigger(port, "sleepy");
      // Started in its task process, not only claimed (`running` in MySQL): a try claimed ahead and
      // still waiting for a slot at SIGTERM is handed back, not finished.
      await waitFor("sleepy's task to start", async () => existsSync(path.join(root, "sleepy-started")), 15_000);
      p.child.kill("SIGTERM");
      const result = await finishWithin(p, 10_000, "standalone after SIGTERM");
      expect({ code: result.code, signal: result.signal }).toEqual({ code: 0, signal: null });
      expect(result.stderr).not.toContain("    at ");
      const row = await taskRow("sleepy", sleepyRun);
      expect(["success", "queued"]).toContain(row!.state);
      // The grace period (8 s by default) outlasts a 1 s task, so it finishes.
      expect(row!.state).toBe("success");
    } finally {
      p.child.kill("SIGKILL");
    }
  }, 60_000);

  it("refuses to serve the API without auth on a non-loopback host", async () => {
    const port = await freePort();
    const r = await baton(["api"], envFor(port, { BATON_AUTH: "off", BATON_HOST: "0.0.0.0" }), 20_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("BATON_CONFIG_INVALID");
    expect(r.stderr).toContain("BATON_AUTH=off");
  }, 30_000);

  it("on SIGINT with a short grace period, hands an unfinished task back to queued and exits 0", async () => {
    const port = await freePort();
    const p = await startStandalone(port, { BATON_SHUTDOWN_GRACE: "300ms" });
    try {
      const runId = await trigger(port, "long_nap");
      await waitFor("long_nap's task to be running", async () => (await taskRow("long_nap", runId))?.state === "running", 15_000);
      p.child.kill("SIGINT");
      const result = await finishWithin(p, 10_000, "standalone after SIGINT");
      expect({ code: result.code, signal: result.signal }).toEqual({ code: 0, signal: null });
      const row = await taskRow("long_nap", runId);
      expect(row).toMatchObject({ state: "queued", try_number: 0 });
    } finally {
      p.child.kill("SIGKILL");
    }
  }, 40_000);

  it("on SIGTERM during start-up (initial DAG scan), exits 0 without starting the API afterwards", async () => {
    // An unmigrated database (so start-up logs "applied ..." once the signal handlers are about
    // to be installed) and a DAG file that takes ~2.5 s to load, so the signal lands mid-scan.
    const startupUrl = `${url}_startup`;
    const slowFolder = path.join(root, "slow_dags");
    await mkdir(slowFolder, { recursive: true });
    await writeFile(
      path.join(slowFolder, "slow.ts"),
      `import { dag } from "baton";
const until = Date.now() + 2500;
while (Date.now() < until) {}
export default dag({ id: "slow_to_load" }, (t) => { t.task("a", async () => 1); });
`,
    );
    const port = await freePort();
    const p = start(["standalone"], { ...envFor(port), BATON_DATABASE_URL: startupUrl, BATON_DAGS_FOLDER: slowFolder });
    try {
      await waitFor(
        "migrations to be applied",
        async () => {
          if (p.child.exitCode !== null) throw new Error(`standalone exited with ${p.child.exitCode}: ${p.out.stderr}`);
          return /applied \d+ migration/.test(p.out.stderr);
        },
        20_000,
        20,
      );
      await new Promise((r) => setTimeout(r, 300)); // inside the 2.5 s scan: the handlers are installed
      p.child.kill("SIGTERM");
      const result = await finishWithin(p, 10_000, "standalone after SIGTERM during start-up");
      expect({ code: result.code, signal: result.signal }).toEqual({ code: 0, signal: null });
      const afterSignal = result.stderr.slice(result.stderr.indexOf("SIGTERM received"));
      expect(result.stderr).toContain("SIGTERM received");
      expect(afterSignal).not.toMatch(/API on http/);
    } finally {
      p.child.kill("SIGKILL");
      await dropDatabase(startupUrl);
    }
  }, 40_000);
});
