// Writes the OpenAPI document to docs/openapi.json (`npm run openapi`). The app is built against
// a database it never connects to: building registers routes, and no route queries at startup.
// The output is canonical (keys sorted, no timestamps), so it only changes when the API does;
// test/integration/openapiContract.test.ts fails when the checked-in copy is stale.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildApp } from "../api/app.ts";
import { canonicalJson } from "../api/openapi.ts";
import { systemClock } from "../core/clock.ts";
import { silentLogger } from "../core/logger.ts";
import { openDb } from "../store/db.ts";

export const SPEC_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "docs", "openapi.json");

/** The spec as docs/openapi.json holds it. */
export async function renderOpenApi(): Promise<string> {
  const db = openDb("mysql://127.0.0.1:1/baton_openapi_never_connected", { connectionLimit: 1 });
  const app = await buildApp({ db, clock: systemClock, logger: silentLogger, config: { logsFolder: "logs" }, auth: { mode: "on" } });
  try {
    return canonicalJson(app.swagger());
  } finally {
    await app.close();
    await db.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await writeFile(SPEC_FILE, await renderOpenApi());
  console.log(`wrote ${path.relative(process.cwd(), SPEC_FILE)}`);
}
