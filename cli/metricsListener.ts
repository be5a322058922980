import { createServer, type Server } from "node:http";
import { processMetrics, setGaugeCounts } from "../core/metrics.ts";
import { poolStats, type Db } from "../store/db.ts";
import { databaseAnswers } from "../store/queries/metrics.ts";

/** How long a scrape waits for MySQL to answer `SELECT 1` before saying baton_metadatabase_up 0. */
const DATABASE_PROBE_TIMEOUT_MS = 2_000;

/**
 * GET /metrics for processes without the API (`baton worker`, `baton scheduler`): their task
 * durations, claim latency and tick histograms exist only in their own memory. Plain HTTP with
 * no token, so it binds BATON_METRICS_HOST (loopback by default) and answers nothing else.
 */
export async function startMetricsListener(db: Db, host: string, port: number, options: { probeTimeoutMs?: number } = {}): Promise<Server> {
  const probeTimeoutMs = options.probeTimeoutMs ?? DATABASE_PROBE_TIMEOUT_MS;
  // One probe at a time: while MySQL hangs, scrapes share the one in flight instead of piling
  // up queries, and each answers "down" after the deadline rather than hanging past Prometheus's.
  let probe: Promise<boolean> | undefined;
  const databaseUp = (): Promise<boolean> => {
    probe ??= databaseAnswers(db.pool).finally(() => (probe = undefined));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), probeTimeoutMs)));
    return Promise.race([probe, late]).finally(() => clearTimeout(timer));
  };
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics here\n");
      return;
    }
    const metrics = processMetrics();
    const pool = poolStats(db.pool);
    if (pool) setGaugeCounts(metrics.dbPoolConnections, "state", new Map(Object.entries(pool)));
    // Asked here as the API's scrape asks it: left unset, the gauge said 0 (database down) on every worker.
    databaseUp()
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
