import { dag } from "baton";

export default dag({ id: "example_etl", schedule: null, defaultArgs: { retries: 2, retryDelay: "1s" } }, (t) => {
  const extract = t.task("extract", async (ctx) => {
    const rows = Array.from({ length: Number(ctx.conf.rows ?? 5) }, (_, i) => ({ id: i + 1, amount: (i + 1) * 10 }));
    ctx.log.info(`extracted ${rows.length} rows`);
    return rows;                                   // stored as the task's XCom (JSON)
  });

  const transform = t.task("transform", { upstream: [extract] }, async (ctx) => {
    const rows = ctx.get(extract);                 // typed: { id: number; amount: number }[]
    return { rows: rows.length, total: rows.reduce((sum, r) => sum + r.amount, 0) };
  });

  const load = t.task("load", async (ctx) => {
    console.log(`loading ${ctx.get(transform).total}`); // stdout goes to the try's log
  });

  transform.then(load);
});
