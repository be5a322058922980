import Fastify, { type FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { ApiDeps } from "./context.ts";
import { installErrorHandler } from "./errors.ts";
import { dagRoutes } from "./routes/dags.ts";
import { dagRunRoutes } from "./routes/dagRuns.ts";
import { systemRoutes } from "./routes/system.ts";
import { taskInstanceRoutes } from "./routes/taskInstances.ts";

export type { ApiDeps };

/** Builds the API without listening (tests call inject(); the CLI listens). */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { coerceTypes: "array", removeAdditional: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
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
    },
    { prefix: "/api/v1" },
  );
  await app.ready();
  return app;
}
