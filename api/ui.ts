// The web UI: the Vite build in ui/dist (npm run build:ui), served at /. The app's pages (/,
// /import-errors, /dead-letters, /event-log and everything under /dags/) get index.html, so a
// reload of /dags/example_etl/graph works; the build's files are served as they are. Nothing
// here matches /api or /docs: an unknown API path keeps its roles and its problem JSON 404.
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

export const UI_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../ui/dist");

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Baton</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.5">
<h1>Baton's web UI is not built</h1>
<p>Build it with <code>npm run build:ui</code> (<code>npm start</code> does that first), then reload.
The REST API is at <a href="/api/v1/dags">/api/v1</a> and its documentation at <a href="/docs">/docs</a>.</p>
</body></html>`;

export interface UiOptions {
  /** The built UI (default ui/dist next to this file). */
  root?: string;
}

export async function uiRoutes(app: FastifyInstance, opts: UiOptions = {}): Promise<void> {
  const root = path.resolve(opts.root ?? UI_DIST);
  await app.register(fastifyStatic, { root, serve: false, suppressWarning: true });

  const sendIndex = (reply: FastifyReply) => {
    if (!existsSync(path.join(root, "index.html"))) return reply.status(503).type("text/html; charset=utf-8").send(NOT_BUILT);
    // index.html names the hashed asset files of the current build: never cache it.
    return reply.header("cache-control", "no-cache").sendFile("index.html", root, { cacheControl: false });
  };

  /** A file of the build (never a dot-file, never outside it), or the usual 404. */
  const sendBuilt = async (rel: string, reply: FastifyReply) => {
    const file = path.resolve(root, rel);
    const inside = file.startsWith(root + path.sep) && !path.relative(root, file).split(path.sep).some((part) => part.startsWith("."));
    const info = inside ? await stat(file).catch(() => null) : null;
    if (!info?.isFile()) return reply.callNotFound();
    // Vite names assets by content hash: they never change under their name.
    const immutable = path.relative(root, file).startsWith(`assets${path.sep}`);
    return reply.sendFile(path.relative(root, file), root, immutable ? { maxAge: "365d", immutable: true } : { cacheControl: false });
  };

  // Public (the app asks for a token itself), undocumented, and outside the API's rate limit.
  const route = { config: { role: "public" as const, rateLimit: false as const }, schema: { hide: true } };
  const page = async (_req: FastifyRequest, reply: FastifyReply) => sendIndex(reply);

  app.get("/", route, page);
  app.get("/dags", route, page);
  app.get("/import-errors", route, page);
  app.get("/dead-letters", route, page);
  app.get("/event-log", route, page);
  app.get("/dags/*", route, page);
  app.get("/assets/*", route, async (req, reply) => sendBuilt(`assets/${(req.params as { "*": string })["*"]}`, reply));
  app.get("/:file", route, async (req, reply) => sendBuilt((req.params as { file: string }).file, reply));
}
