import Ajv from "ajv";
import addFormats from "ajv-formats";
import Fastify, { type FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { ApiDeps } from "./context.ts";
import { installErrorHandler, sendFrameworkError } from "./errors.ts";
import { backfillRoutes } from "./routes/backfills.ts";
import { clearRoutes } from "./routes/clear.ts";
import { dagRoutes } from "./routes/dags.ts";
import { dagRunRoutes } from "./routes/dagRuns.ts";
import { deadLetterRoutes } from "./routes/deadLetters.ts";
import { eventRoutes } from "./routes/events.ts";
import { poolRoutes } from "./routes/pools.ts";
import { signalRoutes } from "./routes/signals.ts";
import { systemRoutes } from "./routes/system.ts";
import { taskInstanceRoutes } from "./routes/taskInstances.ts";
import { workerRoutes } from "./routes/workers.ts";

export type { ApiDeps };

/** Builds the API without listening (tests call inject(); the CLI listens). */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: 1024 * 1024,
    // Ids are up to 250 characters, up to 3× that once percent-encoded; Fastify's default (100)
    // made DAGs and runs with longer ids unreachable (414, outside problem JSON).
    routerOptions: { maxParamLength: 1024 },
    frameworkErrors: sendFrameworkError,
  }).withTypeProvider<TypeBoxTypeProvider>();
  // Query strings and path parameters arrive as text and are coerced to their schema types;
  // JSON bodies are not: {"is_paused": "true"} is a 400, not a pause.
  const coercing = addFormats.default(new Ajv.default({ coerceTypes: "array", useDefaults: true, strict: false }));
  const exact = addFormats.default(new Ajv.default({ coerceTypes: false, useDefaults: true, strict: false }));
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === "body" ? exact : coercing).compile(schema));
  installErrorHandler(app, deps.logger);
  await app.register(swagger, {
    openapi: { info: { title: "Baton REST API", version: "1.0.0", description: "Shaped like Airflow's stable REST API v1." } },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  app.get("/api/v1/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  await app.register(
    async (api) => {
      await api.register(systemRoutes, deps);
      await api.register(dagRoutes, deps);
      await api.register(dagRunRoutes, deps);
      await api.register(taskInstanceRoutes, deps);
      await api.register(poolRoutes, deps);
      await api.register(signalRoutes, deps);
      await api.register(eventRoutes, deps);
      await api.register(deadLetterRoutes, deps);
      await api.register(clearRoutes, deps);
      await api.register(workerRoutes, deps);
      await api.register(backfillRoutes, deps);
    },
    { prefix: "/api/v1" },
  );
  await app.ready();
  return app;
}
