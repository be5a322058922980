// The API's token cache against a revocation on the same process: a lookup that read the token
// live before the revocation and answers after it must not cache it live again.
import Fastify from "fastify";
import { installAuth } from "../../api/auth.ts";
import { installErrorHandler } from "../../api/errors.ts";
import { FakeClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/logger.ts";
import type { Db } from "../../store/db.ts";

const LIVE = { id: 1, name: "ci", role: "viewer", expires_at: null, revoked_at: null };

/** A pool answering token lookups from `live`; a lookup can be held until released. */
function fakeDb() {
  const state = { live: true, lookups: 0, hold: undefined as Promise<void> | undefined };
  const pool = {
    async query(sql: string) {
      if (!sql.startsWith("SELECT")) return [{ affectedRows: 1 }];
      state.lookups++;
      const live = state.live; // what the row was when the statement read it
      await state.hold;
      return [live ? [LIVE] : []];
    },
  };
  return { db: { pool } as unknown as Db, state };
}

async function appWith(db: Db) {
  const app = Fastify({ logger: false });
  installErrorHandler(app, silentLogger);
  installAuth(app, { db, clock: new FakeClock(new Date("2026-11-27T00:00:00Z")), logger: silentLogger, auth: { mode: "on" } });
  app.get("/api/v1/thing", async () => ({ ok: true }));
  await app.ready();
  return app;
}

describe("API token lookups and revocation", () => {
  const get = (app: Awaited<ReturnType<typeof appWith>>) => app.inject({ method: "GET", url: "/api/v1/thing", headers: { authorization: "Bearer secret" } });

  it("caches a live token, and forgets it at a revocation", async () => {
    const { db, state } = fakeDb();
    const app = await appWith(db);
    expect((await get(app)).statusCode).toBe(200);
    expect((await get(app)).statusCode).toBe(200);
    expect(state.lookups).toBe(1);
    state.live = false;
    app.forgetTokenLookups();
    expect((await get(app)).statusCode).toBe(401);
    await app.close();
  });

  // Was: the lookup cached the live row after the revocation emptied the cache, so the revoked
  // token kept working on this process for TOKEN_CACHE_MS.
  it("does not cache what a lookup read before a revocation that happened while it was in flight", async () => {
    const { db, state } = fakeDb();
    const app = await appWith(db);
    let release!: () => void;
    state.hold = new Promise<void>((resolve) => (release = resolve));
    const inFlight = get(app);
    while (state.lookups === 0) await new Promise((resolve) => setImmediate(resolve));
    state.live = false;
    app.forgetTokenLookups();
    release();
    // Read before the revocation: this request itself passes, as it would have a moment earlier.
    expect((await inFlight).statusCode).toBe(200);
    state.hold = undefined;
    expect((await get(app)).statusCode).toBe(401);
    await app.close();
  });
});
