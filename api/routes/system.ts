import { readFileSync } from "node:fs";
import path from "node:path";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { Config } from "../../core/config.ts";
import { formatDuration } from "../../core/durations.ts";
import { BatonError } from "../../core/errors.ts";
import { redactUrl } from "../../store/db.ts";
import { getImportError, IMPORT_ERROR_ORDER_FIELDS, latestHeartbeat, listImportErrors } from "../../store/queries/read.ts";
import { workerLiveness } from "../../store/processes.ts";
import type { ApiDeps } from "../context.ts";
import { ListOf, Nullable, NullableDateTime } from "../openapi.ts";
import { PageQuery } from "../schemas.ts";
import { importErrorJson } from "../serializers.ts";
import { orderByEnum } from "./dags.ts";
import { heartbeatTimeoutOf } from "./workers.ts";
import { INSTALL_ROOT } from "../../core/installation.ts";

const HEALTHY_WITHIN_MS = 30_000;
/** BATON_HEALTH_TIMEOUT's default. */
const HEALTH_TIMEOUT_MS = 3000;

/** fn's value, or a rejection once `ms` passed (fn goes on; its failure is then ignored). */
async function within<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const work = fn();
  work.catch(() => undefined);
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const Status = Type.Enum(["healthy", "unhealthy"]);
const HealthSchema = Type.Object({
  metadatabase: Type.Object({ status: Status }),
  scheduler: Type.Object({ status: Status, latest_scheduler_heartbeat: NullableDateTime }),
  workers: Type.Object({ status: Status, alive: Type.Integer(), latest_worker_heartbeat: NullableDateTime }),
});

const ImportErrorSchema = Type.Object({
  import_error_id: Type.Integer(),
  filename: Type.String(),
  line: Nullable(Type.Integer()),
  code: Type.String(),
  stack_trace: Type.String(),
  message: Type.String(),
  timestamp: NullableDateTime,
});

const VersionSchema = Type.Object({
  version: Type.String(),
  git_version: Nullable(Type.String({ description: "The commit this checkout runs, when it is a git checkout." })),
});

const ConfigSchema = Type.Object({
  sections: Type.Array(Type.Object({ name: Type.String(), options: Type.Array(Type.Object({ key: Type.String(), value: Type.String() })) })),
});

/** package.json's version, and the checked-out commit read from .git (without running git); read once. */
function readVersion(): { version: string; git_version: string | null } {
  let version = "unknown";
  try {
    version = (JSON.parse(readFileSync(path.join(INSTALL_ROOT, "package.json"), "utf8")) as { version?: string }).version ?? version;
  } catch {
    // keep "unknown"
  }
  return { version, git_version: gitCommit(path.join(INSTALL_ROOT, ".git")) };
}

function gitCommit(gitDir: string): string | null {
  const sha = (text: string | undefined) => (text && /^[0-9a-f]{40}$/.test(text.trim()) ? text.trim() : null);
  try {
    const head = readFileSync(path.join(gitDir, "HEAD"), "utf8").trim();
    if (!head.startsWith("ref: ")) return sha(head);
    const ref = head.slice(5);
    try {
      return sha(readFileSync(path.join(gitDir, ref), "utf8"));
    } catch {
      const packed = readFileSync(path.join(gitDir, "packed-refs"), "utf8").split("\n");
      return sha(packed.find((line) => line.endsWith(` ${ref}`))?.split(" ")[0]);
    }
  } catch {
    return null;
  }
}

/**
 * GET /config: Airflow's sections of options. Only the settings listed here are shown — an
 * allowlist, so a secret added to Config later (like BATON_ADMIN_TOKEN) is never shown by
 * accident; the database URL is shown without its password. Each key is the environment
 * variable without BATON_, lower case (dags_folder ← BATON_DAGS_FOLDER).
 */
export function configSections(config: Partial<Config>, databaseUrl: string): { name: string; options: { key: string; value: string }[] }[] {
  const ms = (v: number | undefined) => (v === undefined ? undefined : formatDuration(v));
  const text = (v: unknown) => (v === undefined ? undefined : String(v));
  const rate = config.apiRateLimit;
  const sections: [string, [string, string | undefined][]][] = [
    [
      "core",
      [
        ["dags_folder", config.dagsFolder],
        ["dags_paused_at_creation", text(config.dagsPausedAtCreation)],
        ["dag_parse_timeout", ms(config.dagParseTimeoutMs)],
        ["dag_rescan_interval", ms(config.dagRescanIntervalMs)],
        ["dag_reparse_interval", config.dagReparseIntervalMs === 0 ? "off" : ms(config.dagReparseIntervalMs)],
        ["xcom_max_bytes", text(config.xcomMaxBytes)],
        ["cache_folder", config.cacheFolder],
      ],
    ],
    [
      "database",
      [
        ["database_url", redactUrl(databaseUrl)],
        ["db_statement_timeout", config.dbStatementTimeoutMs === 0 ? "off" : ms(config.dbStatementTimeoutMs)],
        ["db_prepared_statements", text(config.dbPreparedStatements)],
      ],
    ],
    [
      "api",
      [
        ["host", config.host],
        ["port", text(config.port)],
        ["auth", config.auth],
        ["api_rate_limit", rate ? (rate.max > 0 ? `${rate.max}/${formatDuration(rate.windowMs)}` : "off") : undefined],
        ["api_body_limit", text(config.apiBodyLimitBytes)],
        ["api_request_timeout", ms(config.apiRequestTimeoutMs)],
        ["health_timeout", ms(config.healthTimeoutMs)],
        ["cors_origins", config.corsOrigins?.join(",")],
      ],
    ],
    [
      "scheduler",
      [
        ["scheduler_interval", ms(config.schedulerIntervalMs)],
        ["task_heartbeat_timeout", ms(config.taskHeartbeatTimeoutMs)],
        ["backfill_max_runs", text(config.backfillMaxRuns)],
      ],
    ],
    [
      "worker",
      [
        ["workers", text(config.workers)],
        ["task_kill_grace", ms(config.taskKillGraceMs)],
        ["shutdown_grace", ms(config.shutdownGraceMs)],
      ],
    ],
    [
      "logging",
      [
        ["log_level", config.logLevel],
        ["log_format", config.logFormat],
        ["logs_folder", config.logsFolder],
        ["task_log_max_bytes", config.taskLogMaxBytes === 0 ? "off" : text(config.taskLogMaxBytes)],
      ],
    ],
  ];
  return sections.map(([name, options]) => ({
    name,
    options: options.filter((o): o is [string, string] => o[1] !== undefined).map(([key, value]) => ({ key, value })),
  }));
}

export const systemRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, deps) => {
  const { db, clock } = deps;
  const version = readVersion();
  // A load balancer asks often and must hear "unhealthy" soon, not after the statement timeout.
  const healthTimeoutMs = deps.config.healthTimeoutMs ?? HEALTH_TIMEOUT_MS;
  const healthDb = db.withStatementTimeout(healthTimeoutMs);

  app.get(
    "/health",
    {
      config: { role: "public" },
      // 503 answers the same body (not problem JSON): a load balancer reads why.
      schema: { operationId: "get_health", tags: ["Monitoring"], response: { 200: HealthSchema, 503: HealthSchema } },
    },
    async (_req, reply) => {
      let metadatabase: "healthy" | "unhealthy" = "healthy";
      let schedulerBeat: Date | null = null;
      let workers: { alive: number; latest: Date | null } = { alive: 0, latest: null };
      try {
        // Bounded twice: the statements (a stalled connection is destroyed, not left to the next
        // probe) and the whole check, which may first wait for a connection or open one.
        await within(healthTimeoutMs, async () => {
          schedulerBeat = await latestHeartbeat(healthDb.pool, "scheduler");
          workers = await workerLiveness(healthDb.pool, new Date(clock.now().getTime() - heartbeatTimeoutOf(deps)));
        });
      } catch {
        metadatabase = "unhealthy";
      }
      const schedulerHealthy = !!schedulerBeat && clock.now().getTime() - new Date(schedulerBeat).getTime() < HEALTHY_WITHIN_MS;
      const body = {
        metadatabase: { status: metadatabase },
        scheduler: {
          status: schedulerHealthy ? ("healthy" as const) : ("unhealthy" as const),
          latest_scheduler_heartbeat: schedulerBeat ? new Date(schedulerBeat).toISOString() : null,
        },
        // Workers heartbeating within the zombie timeout; GET /api/v1/workers lists them.
        workers: {
          status: workers.alive > 0 ? ("healthy" as const) : ("unhealthy" as const),
          alive: workers.alive,
          latest_worker_heartbeat: workers.latest ? new Date(workers.latest).toISOString() : null,
        },
      };
      return reply.status(metadatabase === "healthy" ? 200 : 503).send(body);
    },
  );

  app.get(
    "/version",
    { config: { role: "public" }, schema: { operationId: "get_version", tags: ["Monitoring"], response: { 200: VersionSchema } } },
    async () => version,
  );

  app.get(
    "/config",
    {
      config: { role: "admin" },
      schema: {
        operationId: "get_config",
        tags: ["Config"],
        querystring: Type.Object({ section: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: "Only this section." })) }),
        response: { 200: ConfigSchema },
      },
    },
    async (req) => {
      const sections = configSections(deps.config as Partial<Config>, db.url);
      const { section } = req.query;
      if (section === undefined) return { sections };
      const only = sections.filter((s) => s.name === section);
      if (only.length === 0) {
        throw new BatonError("BATON_VALIDATION_FAILED", `querystring.section "${section}" is not one of ${sections.map((s) => s.name).join(", ")}`);
      }
      return { sections: only };
    },
  );

  app.get(
    "/importErrors",
    {
      schema: {
        operationId: "get_import_errors",
        tags: ["ImportError"],
        querystring: Type.Object({
          ...PageQuery.properties,
          order_by: Type.Optional(orderByEnum(IMPORT_ERROR_ORDER_FIELDS, "import_error_id (default), timestamp or filename")),
        }),
        response: { 200: ListOf("import_errors", ImportErrorSchema) },
      },
    },
    async (req) => {
      const { limit = 100, offset = 0, order_by } = req.query;
      const { rows, total } = await listImportErrors(db.pool, { limit, offset, orderBy: order_by });
      return { import_errors: rows.map(importErrorJson), total_entries: total };
    },
  );

  app.get(
    "/importErrors/:import_error_id",
    {
      schema: {
        operationId: "get_import_error",
        tags: ["ImportError"],
        params: Type.Object({ import_error_id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }),
        response: { 200: ImportErrorSchema },
      },
    },
    async (req) => {
      const row = await getImportError(db.pool, req.params.import_error_id);
      if (!row) throw new BatonError("BATON_IMPORT_ERROR_NOT_FOUND", `import error ${req.params.import_error_id} not found; it is removed once its file parses`);
      return importErrorJson(row);
    },
  );
};
