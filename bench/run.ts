// `npm run bench` runs every benchmark; `npm run bench -- chain` runs one.
import { chain } from "./chain.ts";

const BENCHMARKS: Record<string, () => Promise<void>> = { chain };

const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const unknown = wanted.filter((name) => !BENCHMARKS[name]);
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(", ")}; available: ${Object.keys(BENCHMARKS).join(", ")}\n`);
  process.exit(2);
}
for (const name of wanted.length ? wanted : Object.keys(BENCHMARKS)) {
  process.stdout.write(`running ${name}…\n`);
  await BENCHMARKS[name]!();
}
