// Browser-test support: build the UI when its sources are newer than ui/dist, run a real
// `baton standalone` on a fresh database and a free port, and launch Debian's Chromium.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";
import { databaseUrlOn, dropDatabase, ensureDatabase } from "../../store/db.ts";
import { waitFor } from "../helpers/db.ts";
import { cleanEnv, ROOT } from "../helpers/cli.ts";
export { ROOT };

export const SCREENSHOTS = path.join(ROOT, "test/ui/screenshots");
const SERVER = process.env.BATON_TEST_DATABASE_SERVER ?? "mysql://root@127.0.0.1:3306";
export const CHROMIUM = process.env.BATON_CHROMIUM ?? "/usr/bin/chromium";

async function newestMtime(p: string): Promise<number> {
  const info = await stat(p).catch(() => null);
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = 0;
  for (const entry of await readdir(p)) newest = Math.max(newest, await newestMtime(path.join(p, entry)));
  return newest;
}

/** Runs `vite build ui` unless ui/dist is newer than every source (a fresh clone has no dist). */
export async function ensureUiBuilt(): Promise<void> {
  const index = path.join(ROOT, "ui/dist/index.html");
  const built = (await stat(index).catch(() => null))?.mtimeMs ?? 0;
  const sources = Math.max(...(await Promise.all(["ui/src", "ui/public", "ui/index.html", "ui/vite.config.ts"].map((p) => newestMtime(path.join(ROOT, p))))));
  if (built > sources) return;
  const output: string[] = [];
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, "node_modules/vite/bin/vite.js"), "build", "ui", "--logLevel", "warn"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d) => output.push(String(d)));
    child.stderr!.on("data", (d) => output.push(String(d)));
    child.once("close", resolve);
  });
  if (code !== 0 || !existsSync(index)) throw new Error(`vite build ui failed (exit ${code}):\n${output.join("")}`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A `node bin/baton.js standalone` process with its own database, folders, port and admin token. */
export class Standalone {
  readonly token = `ui-test-${randomBytes(16).toString("hex")}`;
  readonly url = databaseUrlOn(SERVER, `baton_test_ui_${randomBytes(4).toString("hex")}`);
  port = 0;
  root = "";
  child: ChildProcess | null = null;
  private output = "";

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Creates the database and folders, writes the DAG files, starts the process. */
  async start(dags: Record<string, string>): Promise<void> {
    await ensureDatabase(this.url);
    this.root = await mkdtemp(path.join(os.tmpdir(), "baton-ui-"));
    await mkdir(path.join(this.root, "dags"));
    for (const [name, source] of Object.entries(dags)) await writeFile(path.join(this.root, "dags", name), source);
    this.port = await freePort();
    await this.launch();
  }

  /** Starts (or restarts) the process on the same port and database, and waits until it answers. */
  async launch(): Promise<void> {
    const env = {
      BATON_DATABASE_URL: this.url,
      BATON_PORT: String(this.port),
      BATON_DAGS_FOLDER: path.join(this.root, "dags"),
      BATON_LOGS_FOLDER: path.join(this.root, "logs"),
      BATON_CACHE_FOLDER: path.join(this.root, "cache"),
      BATON_ADMIN_TOKEN: this.token,
      BATON_ADMIN_TOKEN_FILE: path.join(this.root, "admin-token"),
      BATON_WORKERS: "2",
      BATON_LOG_LEVEL: "warn",
    };
    const child = spawn(process.execPath, [path.join(ROOT, "bin/baton.js"), "standalone"], { cwd: ROOT, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (this.output = (this.output + d).slice(-20_000)));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (this.output = (this.output + d).slice(-20_000)));
    await waitFor(
      `baton standalone to answer GET /api/v1/health on port ${this.port}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`standalone exited with ${child.exitCode}:\n${this.output}`);
        const res = await fetch(`${this.base}/api/v1/health`).catch(() => null);
        return res?.status === 200;
      },
      30_000,
      100,
    );
  }

  /** Kills the process at once (SIGKILL) and waits for it to be gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once("close", resolve));
    child.kill("SIGKILL");
    await gone;
  }

  async api<T = Record<string, unknown>>(method: string, route: string, body?: unknown): Promise<{ status: number; json: T }> {
    const res = await fetch(`${this.base}/api/v1${route}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as T };
  }

  get log(): string {
    return this.output;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once("close", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await gone;
      clearTimeout(timer);
    }
    await dropDatabase(this.url).catch(() => undefined);
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
}
