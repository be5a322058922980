// DAG files the benchmarks drop into a temporary DAG folder. Tasks that matter for latency
// return their own start timestamp (wall clock, sub-millisecond), which Baton stores as the
// task's XCom, so hops are measured from inside the task processes.

const STAMP = "performance.timeOrigin + performance.now()";

/** `tasks` sequential tasks t0000 → t0001 → …; each runs `body` then returns its start time. */
export const CHAIN_DAG = (id: string, tasks: number, body = "", options = "") => `
import { dag } from "baton";
${body.includes("fibo(") ? "function fibo(n) { return n < 2 ? n : fibo(n - 1) + fibo(n - 2); }" : ""}
export default dag({ id: "${id}"${options} }, (t) => {
  let previous;
  for (let i = 0; i < ${tasks}; i++) {
    const task = t.task("t" + String(i).padStart(4, "0"), async () => { const start = ${STAMP}; ${body} return start; });
    if (previous) previous.then(task);
    previous = task;
  }
});
`;

/**
 * root → `width` no-op tasks → join. The root and the join return their start time; the
 * middle tasks return nothing (no XCom), or append their task id to `ledger` when given, so a
 * benchmark can count how many times each task really ran.
 */
export const FANOUT_DAG = (id: string, width: number, ledger?: string) => `
import { dag } from "baton";
${ledger ? `import { appendFileSync } from "node:fs";` : ""}
export default dag({ id: "${id}", maxActiveRuns: 1000, maxActiveTasks: 100000 }, (t) => {
  const root = t.task("root", async () => ${STAMP});
  const join = t.task("join", async () => ${STAMP});
  for (let i = 0; i < ${width}; i++) {
    const task = t.task("m" + String(i).padStart(5, "0"), async (ctx) => { ${ledger ? `appendFileSync(${JSON.stringify(ledger)}, ctx.taskId + "\\n");` : ""} });
    root.then(task);
    task.then(join);
  }
});
`;

/** A DAG file for the parse benchmark: `tasks` tasks in a chain, with a description to edit. */
export const PARSE_DAG = (id: string, tasks: number, description: string) => `
import { dag } from "baton";
export default dag({ id: "${id}", description: ${JSON.stringify(description)} }, (t) => {
  let previous;
  for (let i = 0; i < ${tasks}; i++) {
    const task = t.task("step_" + i, async () => ({ step: i }));
    if (previous) previous.then(task);
    previous = task;
  }
});
`;
