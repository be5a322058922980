// A classic extract → transform → load pipeline. Outputs flow between tasks as typed
// values: `ctx.get(extract)` is typed as extract's return type.
import { dag } from "baton";

interface Row {
  id: number;
  amount: number;
}

export default dag(
  {
    id: "example_etl",
    description: "Extract rows, total them, load the summary",
    schedule: null, // manual only: trigger it through the API or `baton dags trigger`
    tags: ["example"],
    defaultArgs: { retries: 2, retryDelay: "1s", executionTimeout: "1m" },
  },
  (t) => {
    const extract = t.task("extract", async (ctx) => {
      const count = Number(ctx.conf.rows ?? 5);
      const rows: Row[] = Array.from({ length: count }, (_, i) => ({ id: i + 1, amount: (i + 1) * 10 }));
      ctx.log.info(`extracted ${rows.length} rows`);
      return rows;
    });

    const transform = t.task("transform", { upstream: [extract] }, async (ctx) => {
      const rows = ctx.get(extract);
      return { rows: rows.length, total: rows.reduce((sum, r) => sum + r.amount, 0) };
    });

    const load = t.task("load", async (ctx) => {
      const summary = ctx.get(transform);
      console.log(`loading summary: ${summary.rows} rows, total ${summary.total}`);
      return { loaded: true, ...summary };
    });

    transform.then(load);
  },
);
