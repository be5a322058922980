import { createServer, type Server } from "node:http";
import { processMetrics, setGaugeCounts } from "../core/metrics.ts";
import { poolStats, type Db } from "../store/db.ts";
import { databaseAnswers } from "../store/queries/metrics.ts";

/**
 * GET /metrics for processes without the API (`baton worker`, `baton scheduler`): their task
 * durations, claim latency and tick histograms exist only in their own memory. Plain HTTP with
 * no token, so it binds BATON_METRICS_HOST (loopback by default) and answers nothing else.
 */
export async function startMetricsListener(db: Db, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics here\n");
      return;
    }
    const metrics = processMetrics();
    const pool = poolStats(db.pool);
    if (pool) setGaugeCounts(metrics.dbPoolConnections, "state", new Map(Object.entries(pool)));
    // Asked here as the API's scrape asks it: left unset, the gauge said 0 (database down) on every worker.
    databaseAnswers(db.pool)
      .then((up) => {
        metrics.metadatabaseUp.set(up ? 1 : 0);
        return metrics.registry.metrics();
      })
      .then(
        (body) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${err.message}\n`),
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
