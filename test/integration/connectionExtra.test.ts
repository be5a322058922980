// A connection's extra may be "" (Airflow's extra is any nullable string, and exports hold ""):
// it means no extra, stored and answered as null, so a task's ctx.connection(...).extra is {}.
// Other text must still be a JSON object.
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../api/app.ts";
import { systemClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/logger.ts";
import type { Db, RowDataPacket } from "../../store/db.ts";
import { createTestDb, dropTestDb } from "../helpers/db.ts";
import { runBaton } from "../helpers/cli.ts";

describe("connections with an empty extra", () => {
  let db: Db;
  let app: FastifyInstance;
  beforeAll(async () => {
    db = await createTestDb();
    app = await buildApp({ db, clock: systemClock, logger: silentLogger, config: { logsFolder: "/tmp" }, auth: { mode: "off" } });
  });
  afterAll(async () => {
    await app?.close();
    await dropTestDb(db);
  });

  const storedExtra = async (id: string) => {
    const [[row]] = await db.pool.query<RowDataPacket[]>("SELECT extra FROM connection WHERE connection_id = ?", [id]);
    return row!.extra as string | null;
  };

  it.each([
    ["empty", ""],
    ["blank", "  \n"],
  ])("POST with an %s extra: 200, stored and answered as null", async (_label, extra) => {
    const id = `c_${_label}`;
    const res = await app.inject({ method: "POST", url: "/api/v1/connections", payload: { connection_id: id, conn_type: "http", extra } });
    expect({ status: res.statusCode, body: res.json() }).toMatchObject({ status: 200, body: { connection_id: id, extra: null } });
    expect(await storedExtra(id)).toBeNull();
    expect((await app.inject({ method: "GET", url: `/api/v1/connections/${id}` })).json().extra).toBeNull();
  });

  it('PATCH extra "" clears it, as null does', async () => {
    const created = await app.inject({ method: "POST", url: "/api/v1/connections", payload: { connection_id: "c_set", conn_type: "http", extra: '{"timeout": 30}' } });
    expect(created.json().extra).toBe('{"timeout":30}');
    const res = await app.inject({ method: "PATCH", url: "/api/v1/connections/c_set", payload: { extra: "" } });
    expect({ status: res.statusCode, extra: res.json().extra }).toEqual({ status: 200, extra: null });
    expect(await storedExtra("c_set")).toBeNull();
  });

  it("other text that is not a JSON object is still refused", async () => {
    for (const extra of ["[]", "30", "not json"]) {
      const res = await app.inject({ method: "POST", url: "/api/v1/connections", payload: { connection_id: "c_bad", conn_type: "http", extra } });
      expect({ status: res.statusCode, code: res.json().code }).toEqual({ status: 400, code: "BATON_VALIDATION_FAILED" });
    }
  });

  it('the CLI takes --extra "" too', async () => {
    const r = await runBaton(["connections", "add", "c_cli", "--conn-type", "http", "--extra", ""], { BATON_DATABASE_URL: db.url });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(await storedExtra("c_cli")).toBeNull();
  });
});
