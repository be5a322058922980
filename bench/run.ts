// `npm run bench` runs every benchmark; `npm run bench -- chain fanout` runs those.
// Each benchmark starts its own Baton processes on its own fresh database and drops it after.
import { api } from "./api.ts";
import { backfill } from "./backfill.ts";
import { bullmq } from "./bullmq.ts";
import { chain } from "./chain.ts";
import { deferred } from "./deferred.ts";
import { fanout } from "./fanout.ts";
import { fibo40 } from "./fibo40.ts";
import { gate } from "./gate.ts";
import { history } from "./history.ts";
import { cleanupAll } from "./lib.ts";
import { memory } from "./memory.ts";
import { parse } from "./parse.ts";
import { profile } from "./profile.ts";
import { workers } from "./workers.ts";

const BENCHMARKS: Record<string, () => Promise<void>> = { chain, fibo40, fanout, workers, memory, history, deferred, parse, api, bullmq, profile, backfill, gate };

const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const unknown = wanted.filter((name) => !BENCHMARKS[name]);
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(", ")}; available: ${Object.keys(BENCHMARKS).join(", ")}\n`);
  process.exit(2);
}
const failed: string[] = [];
for (const name of wanted.length ? wanted : Object.keys(BENCHMARKS)) {
  process.stdout.write(`running ${name}…\n`);
  const started = Date.now();
  try {
    await BENCHMARKS[name]!();
  } catch (err) {
    failed.push(name);
    process.stderr.write(`benchmark ${name} failed: ${(err as Error).stack ?? err}\n`);
  } finally {
    await cleanupAll();
  }
  process.stdout.write(`  (${name}: ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}
if (failed.length > 0) {
  process.stderr.write(`failed: ${failed.join(", ")}\n`);
  process.exit(1);
}
