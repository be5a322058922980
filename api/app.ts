import Ajv, { type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import Fastify, { type FastifyInstance } from "fastify";
import { SerializerSelector, type SerializerFactory } from "@fastify/fast-json-stringify-compiler";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { installAuth } from "./auth.ts";
import type { ApiDeps } from "./context.ts";
import { installCors, installJsonDepthLimit, installLimits } from "./limits.ts";
import { installErrorHandler, sendFrameworkError } from "./errors.ts";
import { installLenient } from "./lenient.ts";
import { installOpenApi } from "./openapi.ts";
import { installRequestLog, metricsRoutes, requestIdOf, withRequestId } from "./metrics.ts";
import { backfillRoutes } from "./routes/backfills.ts";
import { clearRoutes } from "./routes/clear.ts";
import { dagRoutes } from "./routes/dags.ts";
import { dagRunRoutes } from "./routes/dagRuns.ts";
import { deadLetterRoutes } from "./routes/deadLetters.ts";
import { eventRoutes } from "./routes/events.ts";
import { poolRoutes } from "./routes/pools.ts";
import { variableRoutes } from "./routes/variables.ts";
import { connectionRoutes } from "./routes/connections.ts";
import { signalRoutes } from "./routes/signals.ts";
import { systemRoutes } from "./routes/system.ts";
import { taskInstanceRoutes } from "./routes/taskInstances.ts";
import { tokenRoutes } from "./routes/tokens.ts";
import { workerRoutes } from "./routes/workers.ts";
import { uiRoutes } from "./ui.ts";

export type { ApiDeps };

/** Fastify's trustProxy for BATON_TRUST_PROXY; a hop count as the function its types take (trust the n nearest). */
function fastifyTrustProxy(trust: boolean | number | string[]): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof trust === "number" ? (_address, hop) => hop < trust : trust;
}

/**
 * A route's validator compiled at its first request (ApiDeps.lazySchemas). Fastify reads a
 * validator's `errors` after calling it, as Ajv's functions carry them.
 */
function lazyValidator(compile: () => ValidateFunction): (data: unknown) => boolean {
  let validate: ValidateFunction | undefined;
  const lazy = (data: unknown) => {
    validate ??= compile();
    const valid = validate(data) as boolean;
    lazy.errors = validate.errors;
    return valid;
  };
  lazy.errors = null as ValidateFunction["errors"];
  return lazy;
}

/** Fastify's own serializer compiler (fast-json-stringify), each route's serializer compiled at its first answer. */
const lazySerializers: SerializerFactory = (externalSchemas, options) => {
  const compileSerializer = SerializerSelector()(externalSchemas, options);
  return (route) => {
    let serialize: ((data: unknown) => string) | undefined;
    return (data: unknown) => (serialize ??= compileSerializer(route))(data);
  };
};

/** Builds the API without listening (tests call inject(); the CLI listens). */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: deps.config.apiBodyLimitBytes ?? 1024 * 1024,
    // A client that trickles its request is cut off (408) instead of holding a socket forever.
    requestTimeout: deps.config.apiRequestTimeoutMs ?? 30_000,
    // Ids are up to 250 characters, up to 3× that once percent-encoded; Fastify's default (100)
    // made DAGs and runs with longer ids unreachable (414, outside problem JSON).
    routerOptions: { maxParamLength: 1024 },
    frameworkErrors: withRequestId(sendFrameworkError),
    // X-Request-Id: the caller's when it is a safe token (≤ 128 of [A-Za-z0-9._-]), else a UUID.
    genReqId: requestIdOf,
    // Behind a reverse proxy (BATON_TRUST_PROXY), request.ip is the client X-Forwarded-For names: the
    // refusal throttle and the rate limit count clients, not the proxy.
    trustProxy: fastifyTrustProxy(deps.config.trustProxy ?? false),
    ...(deps.lazySchemas ? { schemaController: { compilersFactory: { buildSerializer: lazySerializers } } } : {}),
  }).withTypeProvider<TypeBoxTypeProvider>();
  // Query strings and path parameters arrive as text and are coerced to their schema types;
  // JSON bodies are not: {"is_paused": "true"} is a 400, not a pause. Booleans in any case and
  // date-times whose "+" arrived as a space are read as Airflow reads them (lenient.ts).
  const coercing = addFormats.default(new Ajv.default({ coerceTypes: "array", useDefaults: true, strict: false }));
  const exact = addFormats.default(new Ajv.default({ coerceTypes: false, useDefaults: true, strict: false }));
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const compile = () => (httpPart === "body" ? exact : coercing).compile(schema);
    return deps.lazySchemas ? lazyValidator(compile) : compile();
  });
  // First, so X-Request-Id is set on every answer, refusals by auth and limits included.
  installRequestLog(app, deps.logger, { log: deps.requestLog });
  installErrorHandler(app, deps.logger);
  await installCors(app, deps.config);
  installAuth(app, deps);
  await installLimits(app, deps.config);
  installJsonDepthLimit(app);
  // The spec, /docs, and an onRoute hook giving every route below its problem responses.
  await installOpenApi(app);
  installLenient(app);
  await app.register(metricsRoutes, deps);
  await app.register(
    async (api) => {
      await api.register(systemRoutes, deps);
      await api.register(dagRoutes, deps);
      await api.register(dagRunRoutes, deps);
      await api.register(taskInstanceRoutes, deps);
      await api.register(poolRoutes, deps);
      await api.register(variableRoutes, deps);
      await api.register(connectionRoutes, deps);
      await api.register(signalRoutes, deps);
      await api.register(eventRoutes, deps);
      await api.register(deadLetterRoutes, deps);
      await api.register(clearRoutes, deps);
      await api.register(workerRoutes, deps);
      await api.register(backfillRoutes, deps);
      await api.register(tokenRoutes, deps);
    },
    { prefix: "/api/v1" },
  );
  // The web UI at / (ui/dist); unknown /api paths stay problem JSON 404s.
  await app.register(uiRoutes);
  await app.ready();
  return app;
}
