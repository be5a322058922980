// Variables and connections end to end: CRUD through the API with Airflow's shapes, masking of
// sensitive values, passwords that never come back, encryption at rest, a task reading both
// (its log shows *** for the secrets), and the CLI's set/get round trip. Real MariaDB.
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { LightMyRequestResponse } from "fastify";
import { buildApp } from "../../api/app.ts";
import { generateToken, hashToken } from "../../core/apiTokens.ts";
import { insertToken } from "../../store/apiTokens.ts";
import { getConnection } from "../../store/connections.ts";
import { encrypt, secretKey } from "../../store/secretBox.ts";
import { createVariable, getVariable } from "../../store/variables.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import { NAME_RULE_DETAIL, withControlCharacters } from "../helpers/expect.ts";
import type { RowDataPacket } from "../../store/db.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SECRET_KEY = "test-key-for-variables-and-connections";
const PASSWORD = "pw-Very-Secret-8841";
const EXTRA_SECRET = "cs-extra-secret-5150";
const TOKEN_VALUE = "tok-abc-123456";
const NOT_JSON_SECRET = "[1, hunter2-not-json-secret]";

const READER = dagSource(`
export default dag({ id: "vc_reader" }, (t) => {
  t.task("read", async (ctx) => {
    const greeting = await ctx.variables.get("vc_greeting");
    const token = await ctx.variables.get("vc_api_token");
    const missing = await ctx.variables.get("vc_missing");
    const fallback = await ctx.variables.get("vc_missing", "fell back");
    const settings = await ctx.variables.getJson("vc_settings");
    const conn = await ctx.connection("vc_warehouse");
    console.log("greeting is " + greeting);
    console.log("token is " + token);
    console.log("password is " + conn.password);
    ctx.log.info("the whole connection:", conn);
    console.error("extra secret is " + conn.extra.client_secret);
    return {
      greeting, missing: missing === undefined, fallback, settings,
      connectionId: conn.connectionId, connType: conn.connType, host: conn.host, port: conn.port,
      login: conn.login, schema: conn.schema, timeout: conn.extra.timeout, passwordLength: conn.password.length,
    };
  });
  t.task("no_such_connection", async (ctx) => { await ctx.connection("vc_nowhere"); });
  // Keys compare with PAD SPACE: these would read "vc_greeting" and "vc_warehouse".
  t.task("padded_keys", async (ctx) => {
    const refused = async (get) => { try { await get(); return "read"; } catch (err) { return err.message; } };
    return [await refused(() => ctx.variables.get("vc_greeting ")), await refused(() => ctx.connection("vc_warehouse "))];
  });
  // A sensitive variable that is not JSON: the parser's message quotes the text's first characters.
  t.task("secret_not_json", async (ctx) => { await ctx.variables.getJson("vc_db_password"); });
  // A value sealed with a key this worker does not have.
  t.task("sealed_elsewhere", async (ctx) => { await ctx.variables.get("vc_sealed_elsewhere"); });
  t.task("leaky_error", async (ctx) => {
    const c = await ctx.connection("vc_warehouse");
    throw new Error("could not log in with " + c.password);
  });
});
`);

const PROBLEM_KEYS = ["code", "detail", "status", "title", "type"];

function expectProblem(res: LightMyRequestResponse, status: number, code: string, detailContains?: string | RegExp) {
  expect({ status: res.statusCode, body: res.body }).toMatchObject({ status });
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  const problem = res.json() as Record<string, unknown>;
  expect(Object.keys(problem).sort()).toEqual(PROBLEM_KEYS);
  expect(problem.code).toBe(code);
  if (typeof detailContains === "string") expect(problem.detail).toContain(detailContains);
  else if (detailContains) expect(problem.detail).toMatch(detailContains);
}

describe("variables and connections", () => {
  const savedKey = process.env.BATON_SECRET_KEY;
  const h = new Harness({ workers: 2 });
  /** Every connection response body, checked for the password at the end. */
  const seen: string[] = [];

  async function call(method: "GET" | "POST" | "PATCH" | "DELETE", url: string, payload?: unknown) {
    const res = await h.app.inject({ method, url: `/api/v1${url}`, ...(payload === undefined ? {} : { payload: payload as object }) });
    seen.push(res.body);
    return res;
  }

  beforeAll(async () => {
    process.env.BATON_SECRET_KEY = SECRET_KEY;
    await h.start({ "reader.ts": READER });
    await h.run();
  });
  afterAll(async () => {
    await h.stop();
    if (savedKey === undefined) delete process.env.BATON_SECRET_KEY;
    else process.env.BATON_SECRET_KEY = savedKey;
  });

  it("creates, reads, lists, updates and deletes variables with Airflow's shapes", async () => {
    const created = await call("POST", "/variables", { key: "vc_crud_b", value: "two", description: "second" });
    expect(created.statusCode).toBe(200);
    expect(created.json()).toEqual({ key: "vc_crud_b", value: "two", description: "second" });
    expect((await call("POST", "/variables", { key: "vc_crud_a", value: "one" })).json()).toEqual({ key: "vc_crud_a", value: "one", description: null });
    expectProblem(await call("POST", "/variables", { key: "vc_crud_a", value: "again" }), 409, "BATON_VARIABLE_EXISTS", "vc_crud_a");

    expect((await call("GET", "/variables/vc_crud_a")).json()).toEqual({ key: "vc_crud_a", value: "one", description: null });
    const list = (await call("GET", "/variables?limit=1000")).json();
    expect(list.total_entries).toBe(list.variables.length);
    const keys = list.variables.map((v: { key: string }) => v.key);
    expect(keys).toEqual([...keys].sort());
    expect(keys).toEqual(expect.arrayContaining(["vc_crud_a", "vc_crud_b"]));
    const page = (await call("GET", `/variables?limit=1&offset=${keys.indexOf("vc_crud_b")}`)).json();
    expect(page).toEqual({ variables: [{ key: "vc_crud_b", value: "two", description: "second" }], total_entries: list.total_entries });
    // Airflow's order_by: key, or -key for descending; other fields are refused.
    const descending = (await call("GET", "/variables?limit=1000&order_by=-key")).json().variables.map((v: { key: string }) => v.key);
    expect(descending).toEqual([...keys].reverse());
    expectProblem(await call("GET", "/variables?order_by=value"), 400, "BATON_VALIDATION_FAILED", "order_by");

    // update_mask limits the change to the fields it names; without it, every field given changes.
    const masked = await call("PATCH", "/variables/vc_crud_b?update_mask=value", { key: "vc_crud_b", value: "TWO", description: "ignored" });
    expect(masked.json()).toEqual({ key: "vc_crud_b", value: "TWO", description: "second" });
    expect((await call("PATCH", "/variables/vc_crud_b", { description: null })).json()).toEqual({ key: "vc_crud_b", value: "TWO", description: null });

    const deleted = await call("DELETE", "/variables/vc_crud_b");
    expect(deleted.statusCode).toBe(204);
    expect(deleted.body).toBe("");
    expectProblem(await call("GET", "/variables/vc_crud_b"), 404, "BATON_VARIABLE_NOT_FOUND", "vc_crud_b");
    expectProblem(await call("PATCH", "/variables/vc_crud_b", { value: "x" }), 404, "BATON_VARIABLE_NOT_FOUND");
    expectProblem(await call("DELETE", "/variables/vc_crud_b"), 404, "BATON_VARIABLE_NOT_FOUND");
  });

  it("masks the values of variables whose key is sensitive, in every answer", async () => {
    const created = await call("POST", "/variables", { key: "vc_Db_Password", value: "hunter2-secret" });
    expect(created.json()).toEqual({ key: "vc_Db_Password", value: "***", description: null });
    expect((await call("GET", "/variables/vc_Db_Password")).json().value).toBe("***");
    expect((await call("PATCH", "/variables/vc_Db_Password", { value: "hunter3-secret" })).json().value).toBe("***");
    const listed = (await call("GET", "/variables")).json().variables.find((v: { key: string }) => v.key === "vc_Db_Password");
    expect(listed.value).toBe("***");
    expect(seen.join("\n")).not.toContain("hunter");
    // Stored encrypted (BATON_SECRET_KEY is set), not in plain text.
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT val, is_encrypted FROM variable WHERE `key` = 'vc_Db_Password'");
    expect(row!.is_encrypted).toBe(1);
    expect(row!.val).not.toContain("hunter");
  });

  it("keeps a secret that a client writes back as the mask it was shown (read, edit another field, write)", async () => {
    await call("POST", "/variables", { key: "vc_api_key", value: "real-key-1" });
    const shown = (await call("GET", "/variables/vc_api_key")).json();
    expect(shown.value).toBe("***");
    expect((await call("PATCH", "/variables/vc_api_key", { ...shown, description: "edited" })).statusCode).toBe(200);
    expect(await getVariable(h.db.pool, "vc_api_key")).toMatchObject({ value: "real-key-1", description: "edited" });

    const extra = { api_key: "real-key-2", region: "eu", nested: { token: "real-key-3" } };
    await call("POST", "/connections", { connection_id: "vc_masked", conn_type: "http", extra: JSON.stringify(extra) });
    const conn = (await call("GET", "/connections/vc_masked")).json();
    const edited = { ...JSON.parse(conn.extra), region: "us" };
    expect(edited).toEqual({ api_key: "***", region: "us", nested: { token: "***" } });
    expect((await call("PATCH", "/connections/vc_masked", { extra: JSON.stringify(edited) })).statusCode).toBe(200);
    expect(JSON.parse((await getConnection(h.db.pool, "vc_masked"))!.extra!)).toEqual({ ...extra, region: "us" });
    // A new secret replaces the old one.
    await call("PATCH", "/connections/vc_masked", { extra: JSON.stringify({ ...edited, api_key: "real-key-4" }) });
    expect(JSON.parse((await getConnection(h.db.pool, "vc_masked"))!.extra!).api_key).toBe("real-key-4");
  });

  it("rejects bad variable requests with 400 naming the field", async () => {
    expectProblem(await call("POST", "/variables", { key: "vc_bad" }), 400, "BATON_VALIDATION_FAILED", "body.value is required");
    expectProblem(await call("POST", "/variables", { value: "v" }), 400, "BATON_VALIDATION_FAILED", "body.key is required");
    expectProblem(await call("POST", "/variables", { key: "vc_bad", value: 42 }), 400, "BATON_VALIDATION_FAILED", "body.value");
    expectProblem(await call("POST", "/variables", { key: "k".repeat(251), value: "v" }), 400, "BATON_VALIDATION_FAILED", "body.key");
    expectProblem(await call("POST", "/variables", { key: "vc_bad", value: "v", val: "typo" }), 400, "BATON_VALIDATION_FAILED", "body.val is not an allowed property");
    await call("POST", "/variables", { key: "vc_patchable", value: "v" });
    expectProblem(await call("PATCH", "/variables/vc_patchable?update_mask=bogus", { value: "w" }), 400, "BATON_VALIDATION_FAILED", "update_mask");
    expectProblem(await call("PATCH", "/variables/vc_patchable?update_mask=description", { value: "w" }), 400, "BATON_VALIDATION_FAILED", "body.description");
    expectProblem(await call("PATCH", "/variables/vc_patchable", { key: "other", value: "w" }), 400, "BATON_VALIDATION_FAILED", "body.key");
    expectProblem(await call("PATCH", "/variables/vc_patchable", {}), 400, "BATON_VALIDATION_FAILED", "value or description");
    // MySQL compares keys with PAD SPACE ("k " equals "k"): a key ending with a space is refused,
    // never taken for another one.
    await call("POST", "/variables", { key: "vc_padded", value: "kept" });
    expectProblem(await call("POST", "/variables", { key: "vc_padded ", value: "other" }), 400, "BATON_VALIDATION_FAILED", "body.key");
    expectProblem(await call("DELETE", "/variables/vc_padded%20"), 400, "BATON_VALIDATION_FAILED", "variable_key");
    expectProblem(await call("GET", "/variables/vc_padded%20"), 400, "BATON_VALIDATION_FAILED", "variable_key");
    expect((await call("GET", "/variables/vc_padded")).json().value).toBe("kept");
    // Nor is a key created with a control character (printed in CLI rows, where a newline splits
    // one): the API's one name rule refuses it in POST's body. The path looks up any key an older
    // Baton may have stored (the next test), so such a key not stored is simply not found.
    for (const key of withControlCharacters("vc_padded")) {
      expectProblem(await call("POST", "/variables", { key, value: "other" }), 400, "BATON_VALIDATION_FAILED", `body.key ${NAME_RULE_DETAIL}`);
      for (const method of ["GET", "PATCH", "DELETE"] as const) {
        const res = await call(method, `/variables/${encodeURIComponent(key)}`, method === "PATCH" ? { value: "other" } : undefined);
        expectProblem(res, 404, "BATON_VARIABLE_NOT_FOUND");
      }
    }
    expect((await call("GET", "/variables/vc_padded")).json().value).toBe("kept");
    // A 250-character key is fine.
    expect((await call("POST", "/variables", { key: "k".repeat(250), value: "long key" })).statusCode).toBe(200);
    expect((await call("GET", `/variables/${"k".repeat(250)}`)).json().value).toBe("long key");
  });

  // Until the name rule (core/dagLimits.ts NAME_PATTERN), POST /variables took any key not ending
  // with a space: a tab, a newline, a NUL inside, a tab or a no-break space at the end. Such rows
  // are listed, so they can be read, changed (the whole object written back too) and deleted.
  it("reads, changes and deletes variables an older Baton stored under keys the name rule now refuses", async () => {
    const keys = ["vc_old\tkey", "vc_old_tab\t", "vc_old\nline", "vc_old\u0000nul", "vc_old_nbsp\u00a0"];
    for (const key of keys) await createVariable(h.db.pool, { key, value: `old ${key}` });
    const listed = (await call("GET", "/variables?limit=1000")).json().variables.map((v: { key: string }) => v.key);
    expect(listed).toEqual(expect.arrayContaining(keys));
    for (const key of keys) {
      const url = `/variables/${encodeURIComponent(key)}`;
      expect({ key, answer: (await call("GET", url)).json() }).toEqual({ key, answer: { key, value: `old ${key}`, description: null } });
      const changed = await call("PATCH", url, { value: `new ${key}` });
      expect({ key, answer: changed.json() }).toEqual({ key, answer: { key, value: `new ${key}`, description: null } });
      // A client writing back what it read (body.key included) changes it too.
      const written = await call("PATCH", url, { ...((await call("GET", url)).json() as object), description: "edited" });
      expect({ key, answer: written.json() }).toEqual({ key, answer: { key, value: `new ${key}`, description: "edited" } });
      expect({ key, status: (await call("DELETE", url)).statusCode }).toEqual({ key, status: 204 });
      expect({ key, gone: await getVariable(h.db.pool, key) }).toEqual({ key, gone: undefined });
      // Still never created under the rule it breaks.
      expectProblem(await call("POST", "/variables", { key, value: "again" }), 400, "BATON_VALIDATION_FAILED", `body.key ${NAME_RULE_DETAIL}`);
    }
    // A path key ending with a space still finds nothing else: PAD SPACE would match "vc_old_sp" to it.
    await createVariable(h.db.pool, { key: "vc_old_sp", value: "kept" });
    for (const method of ["GET", "PATCH", "DELETE"] as const) {
      expectProblem(await call(method, "/variables/vc_old_sp%20", method === "PATCH" ? { value: "x" } : undefined), 400, "BATON_VALIDATION_FAILED", "variable_key");
    }
    expect(await getVariable(h.db.pool, "vc_old_sp")).toMatchObject({ value: "kept" });
  });

  it("creates, reads, lists, updates and deletes connections, never returning the password", async () => {
    const body = {
      connection_id: "vc_crud_conn",
      conn_type: "postgres",
      description: "the warehouse",
      host: "db.internal",
      login: "etl",
      schema: "analytics",
      port: 5432,
      password: PASSWORD,
      extra: JSON.stringify({ sslmode: "require", client_secret: EXTRA_SECRET, nested: { api_key: "nested-key-9", region: "eu" } }),
    };
    const created = await call("POST", "/connections", body);
    expect(created.statusCode).toBe(200);
    const expected = {
      connection_id: "vc_crud_conn",
      conn_type: "postgres",
      description: "the warehouse",
      host: "db.internal",
      login: "etl",
      schema: "analytics",
      port: 5432,
      extra: JSON.stringify({ sslmode: "require", client_secret: "***", nested: { api_key: "***", region: "eu" } }),
    };
    expect(created.json()).toEqual(expected);
    expectProblem(await call("POST", "/connections", body), 409, "BATON_CONNECTION_EXISTS", "vc_crud_conn");
    expect((await call("GET", "/connections/vc_crud_conn")).json()).toEqual(expected);
    const list = (await call("GET", "/connections")).json();
    expect(list.total_entries).toBe(list.connections.length);
    // Airflow's order_by: connection_id (default), conn_type, host or port, ties broken by connection_id.
    const ids = list.connections.map((c: { connection_id: string }) => c.connection_id);
    expect(ids).toEqual([...ids].sort());
    expect((await call("GET", "/connections?order_by=-connection_id")).json().connections.map((c: { connection_id: string }) => c.connection_id)).toEqual([...ids].reverse());
    const byType = (await call("GET", "/connections?order_by=conn_type")).json().connections as { connection_id: string; conn_type: string }[];
    expect(byType.map((c) => c.conn_type)).toEqual(byType.map((c) => c.conn_type).sort());
    expectProblem(await call("GET", "/connections?order_by=password"), 400, "BATON_VALIDATION_FAILED", "order_by");
    expect(list.connections.find((c: { connection_id: string }) => c.connection_id === "vc_crud_conn")).toEqual(expected);

    const patched = await call("PATCH", "/connections/vc_crud_conn?update_mask=host,port", { host: "db2.internal", port: 6543, login: "ignored" });
    expect(patched.json()).toEqual({ ...expected, host: "db2.internal", port: 6543 });
    const cleared = await call("PATCH", "/connections/vc_crud_conn", { password: "pw-rotated-7777", description: null });
    expect(cleared.json()).toEqual({ ...expected, host: "db2.internal", port: 6543, description: null });

    // At rest: password and extra are encrypted.
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT password, extra, is_encrypted, is_extra_encrypted FROM connection WHERE connection_id = 'vc_crud_conn'");
    expect([row!.is_encrypted, row!.is_extra_encrypted]).toEqual([1, 1]);
    expect(`${row!.password} ${row!.extra}`).not.toMatch(/pw-rotated|cs-extra|sslmode/);

    expect((await call("DELETE", "/connections/vc_crud_conn")).statusCode).toBe(204);
    expectProblem(await call("GET", "/connections/vc_crud_conn"), 404, "BATON_CONNECTION_NOT_FOUND", "vc_crud_conn");
    expectProblem(await call("PATCH", "/connections/vc_crud_conn", { host: "x" }), 404, "BATON_CONNECTION_NOT_FOUND");
    expectProblem(await call("DELETE", "/connections/vc_crud_conn"), 404, "BATON_CONNECTION_NOT_FOUND");

    for (const text of seen) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain("pw-rotated-7777");
      expect(text).not.toContain(EXTRA_SECRET);
      expect(text).not.toContain("nested-key-9");
      expect(text).not.toContain('"password"');
    }
  });

  it("rejects bad connection requests with 400 naming the field", async () => {
    expectProblem(await call("POST", "/connections", { connection_id: "vc_bad" }), 400, "BATON_VALIDATION_FAILED", "body.conn_type is required");
    expectProblem(await call("POST", "/connections", { conn_type: "http" }), 400, "BATON_VALIDATION_FAILED", "body.connection_id is required");
    expectProblem(await call("POST", "/connections", { connection_id: "has space", conn_type: "http" }), 400, "BATON_VALIDATION_FAILED", "body.connection_id");
    expectProblem(await call("POST", "/connections", { connection_id: "vc_bad", conn_type: "http", port: "80" }), 400, "BATON_VALIDATION_FAILED", "body.port");
    expectProblem(await call("POST", "/connections", { connection_id: "vc_bad", conn_type: "http", port: 70_000 }), 400, "BATON_VALIDATION_FAILED", "body.port");
    expectProblem(await call("POST", "/connections", { connection_id: "vc_bad", conn_type: "http", extra: "{not json" }), 400, "BATON_VALIDATION_FAILED", "body.extra");
    expectProblem(await call("POST", "/connections", { connection_id: "vc_bad", conn_type: "http", extra: "[1,2]" }), 400, "BATON_VALIDATION_FAILED", "body.extra");
    expectProblem(await call("POST", "/connections", { connection_id: "vc_bad", conn_type: "http", passwd: "x" }), 400, "BATON_VALIDATION_FAILED", "body.passwd");
    expectProblem(await call("GET", "/connections/vc_bad"), 404, "BATON_CONNECTION_NOT_FOUND");
    await call("POST", "/connections", { connection_id: "vc_patch_me", conn_type: "http" });
    expectProblem(await call("PATCH", "/connections/vc_patch_me?update_mask=password_x", { password: "x" }), 400, "BATON_VALIDATION_FAILED", "update_mask");
    expectProblem(await call("PATCH", "/connections/vc_patch_me", { connection_id: "renamed" }), 400, "BATON_VALIDATION_FAILED", "body.connection_id");
    expectProblem(await call("PATCH", "/connections/vc_patch_me", { extra: "nope" }), 400, "BATON_VALIDATION_FAILED", "body.extra");
    expectProblem(await call("PATCH", "/connections/vc_patch_me", {}), 400, "BATON_VALIDATION_FAILED", "at least one of");
  });

  it("keeps rows readable across key changes: plain rows with a key, and a clear error without it", async () => {
    await h.db.pool.query("INSERT INTO variable (`key`, val, is_encrypted) VALUES ('vc_written_plain', 'plain value', FALSE)");
    expect((await call("GET", "/variables/vc_written_plain")).json().value).toBe("plain value");
    await call("POST", "/variables", { key: "vc_encrypted", value: "sealed value" });
    delete process.env.BATON_SECRET_KEY;
    try {
      expectProblem(await call("GET", "/variables/vc_encrypted"), 500, "BATON_CONFIG_INVALID", "BATON_SECRET_KEY");
      // Without a key, new values are stored as plain text.
      await call("POST", "/variables", { key: "vc_unsealed", value: "open value" });
      const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT val, is_encrypted FROM variable WHERE `key` = 'vc_unsealed'");
      expect([row!.val, row!.is_encrypted]).toEqual(["open value", 0]);
      process.env.BATON_SECRET_KEY = "some other key";
      expectProblem(await call("GET", "/variables/vc_encrypted"), 500, "BATON_CONFIG_INVALID", "not the key");
    } finally {
      process.env.BATON_SECRET_KEY = SECRET_KEY;
    }
    expect((await call("GET", "/variables/vc_encrypted")).json().value).toBe("sealed value");
  });

  it("writes nothing when a PATCH cannot answer because a stored secret is sealed with another key", async () => {
    await call("POST", "/variables", { key: "vc_sealed_var", value: "sealed with the first key", description: "before" });
    await call("POST", "/connections", {
      connection_id: "vc_sealed_conn",
      conn_type: "postgres",
      host: "db-before",
      password: "pw-first-key-1234",
      extra: JSON.stringify({ api_key: "extra-first-key-1234" }),
    });
    for (const wrongKey of ["another key", undefined]) {
      if (wrongKey === undefined) delete process.env.BATON_SECRET_KEY;
      else process.env.BATON_SECRET_KEY = wrongKey;
      try {
        expectProblem(await call("PATCH", "/variables/vc_sealed_var", { description: "after" }), 500, "BATON_CONFIG_INVALID", "vc_sealed_var");
        expectProblem(await call("PATCH", "/connections/vc_sealed_conn", { host: "db-after" }), 500, "BATON_CONFIG_INVALID", "vc_sealed_conn");
      } finally {
        process.env.BATON_SECRET_KEY = SECRET_KEY;
      }
      // The error was the answer: the change was not made.
      expect((await call("GET", "/variables/vc_sealed_var")).json()).toEqual({ key: "vc_sealed_var", value: "sealed with the first key", description: "before" });
      expect((await call("GET", "/connections/vc_sealed_conn")).json().host).toBe("db-before");
    }
    // Replacing every sealed field is how a lost key is recovered: that PATCH succeeds.
    process.env.BATON_SECRET_KEY = "a new key";
    try {
      expect((await call("PATCH", "/variables/vc_sealed_var", { value: "sealed with the new key" })).json().value).toBe("sealed with the new key");
      const extra = JSON.stringify({ api_key: "extra-new-key-5678" });
      expect((await call("PATCH", "/connections/vc_sealed_conn", { password: "pw-new-key-5678", extra, host: "db-after" })).json().host).toBe("db-after");
      expect(await getConnection(h.db.pool, "vc_sealed_conn")).toMatchObject({ password: "pw-new-key-5678", extra });
    } finally {
      // Sealed with a key the other tests do not have, they would fail their lists.
      await h.db.pool.query("DELETE FROM variable WHERE `key` = 'vc_sealed_var'");
      await h.db.pool.query("DELETE FROM connection WHERE connection_id = 'vc_sealed_conn'");
      process.env.BATON_SECRET_KEY = SECRET_KEY;
    }
  });

  it("gives tasks variables and connections, and masks the secrets they fetched in their log and errors", async () => {
    await call("POST", "/variables", { key: "vc_greeting", value: "hello-from-a-variable" });
    await call("POST", "/variables", { key: "vc_api_token", value: TOKEN_VALUE });
    await call("POST", "/variables", { key: "vc_settings", value: JSON.stringify({ batch: 50, regions: ["eu", "us"] }) });
    await call("POST", "/variables", { key: "vc_db_password", value: NOT_JSON_SECRET });
    await h.db.pool.query("INSERT INTO variable (`key`, val, is_encrypted) VALUES ('vc_sealed_elsewhere', ?, TRUE)", [
      encrypt(secretKey({ BATON_SECRET_KEY: "a key this worker does not have" })!, "sealed elsewhere"),
    ]);
    await call("POST", "/connections", {
      connection_id: "vc_warehouse",
      conn_type: "postgres",
      host: "warehouse.internal",
      login: "loader",
      schema: "dw",
      port: 5433,
      password: PASSWORD,
      extra: JSON.stringify({ timeout: 30, client_secret: EXTRA_SECRET }),
    });
    const runId = "vc_run_1";
    const trigger = await call("POST", "/dags/vc_reader/dagRuns", { dag_run_id: runId });
    expect({ status: trigger.statusCode, body: trigger.body }).toMatchObject({ status: 200 });
    await waitFor(
      "vc_reader run to finish",
      async () => ["success", "failed"].includes((await call("GET", `/dags/vc_reader/dagRuns/${runId}`)).json().state),
      30_000,
    );
    const ti = async (taskId: string) => (await call("GET", `/dags/vc_reader/dagRuns/${runId}/taskInstances/${taskId}`)).json();

    expect((await ti("read")).state).toBe("success");
    const output = (await call("GET", `/dags/vc_reader/dagRuns/${runId}/taskInstances/read/xcomEntries/return_value`)).json().value;
    expect(output).toEqual({
      greeting: "hello-from-a-variable",
      missing: true,
      fallback: "fell back",
      settings: { batch: 50, regions: ["eu", "us"] },
      connectionId: "vc_warehouse",
      connType: "postgres",
      host: "warehouse.internal",
      port: 5433,
      login: "loader",
      schema: "dw",
      timeout: 30,
      passwordLength: PASSWORD.length,
    });

    const log = await h.taskLog("vc_reader", runId, "read", 1);
    expect(log).toContain("greeting is hello-from-a-variable");
    expect(log).toContain("token is ***");
    expect(log).toContain("password is ***");
    expect(log).toContain("extra secret is ***");
    expect(log).toContain("warehouse.internal");
    for (const secret of [PASSWORD, TOKEN_VALUE, EXTRA_SECRET]) expect(log).not.toContain(secret);

    const missing = await ti("no_such_connection");
    expect(missing.state).toBe("failed");
    expect(missing.error).toMatchObject({ code: "BATON_CONNECTION_NOT_FOUND" });
    expect(missing.error.message).toContain('"vc_nowhere"');

    expect((await call("GET", `/dags/vc_reader/dagRuns/${runId}/taskInstances/padded_keys/xcomEntries/return_value`)).json().value).toEqual([
      'ctx.variables.get(key): the key must not end with a space, got "vc_greeting "',
      'ctx.connection(id): the key must not end with a space, got "vc_warehouse "',
    ]);

    // Not one character of the secret: JSON.parse's message would quote "[1, hunter"... of it.
    const notJson = await ti("secret_not_json");
    expect(notJson.state).toBe("failed");
    expect(notJson.error.message).toContain('variable "vc_db_password" is not valid JSON');
    const notJsonLog = await h.taskLog("vc_reader", runId, "secret_not_json", 1);
    for (const text of [JSON.stringify(notJson), notJsonLog]) expect(text).not.toContain("hunter");

    // The API's code for it, and a stack through the task's own line, as for a missing connection.
    const sealed = await ti("sealed_elsewhere");
    expect(sealed.state).toBe("failed");
    expect(sealed.error).toMatchObject({ code: "BATON_CONFIG_INVALID", message: expect.stringContaining("not the key it was stored with") });
    expect(sealed.error.stack).toContain("reader.ts");
    await h.db.pool.query("DELETE FROM variable WHERE `key` = 'vc_sealed_elsewhere'"); // it would fail GET /variables

    const leaky = await ti("leaky_error");
    expect(leaky.state).toBe("failed");
    expect(leaky.error.message).toBe("could not log in with ***");
    expect(JSON.stringify(leaky)).not.toContain(PASSWORD);
    const leakyLog = await h.taskLog("vc_reader", runId, "leaky_error", 1);
    expect(leakyLog).toContain("could not log in with ***");
    expect(leakyLog).not.toContain(PASSWORD);
  });

  it("lets only admin tokens use the variables and connections routes, reads included", async () => {
    const tokens: Record<string, string> = {};
    for (const role of ["viewer", "operator", "admin"] as const) {
      tokens[role] = generateToken();
      await insertToken(h.db.pool, { name: `vc-${role}`, role, hash: hashToken(tokens[role]!), prefix: "baton_x", now: h.clock.now() });
    }
    const app = await buildApp({ db: h.db, clock: h.clock, logger: h.logger, config: { logsFolder: h.logsFolder }, auth: { mode: "on" } });
    try {
      const requests = [
        ["GET", "/variables"],
        ["GET", "/variables/vc_greeting"],
        ["POST", "/variables"],
        ["PATCH", "/variables/vc_greeting"],
        ["DELETE", "/variables/vc_greeting"],
        ["GET", "/connections"],
        ["GET", "/connections/vc_warehouse"],
        ["POST", "/connections"],
        ["PATCH", "/connections/vc_warehouse"],
        ["DELETE", "/connections/vc_warehouse"],
      ] as const;
      for (const [method, url] of requests) {
        for (const role of ["viewer", "operator"]) {
          const res = await app.inject({ method, url: `/api/v1${url}`, headers: { authorization: `Bearer ${tokens[role]}` }, ...(method === "GET" || method === "DELETE" ? {} : { payload: {} }) });
          expect({ method, url, role, status: res.statusCode }).toEqual({ method, url, role, status: 403 });
        }
      }
      const admin = await app.inject({ method: "GET", url: "/api/v1/connections", headers: { authorization: `Bearer ${tokens.admin}` } });
      expect(admin.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it("sets and gets a variable with the CLI", async () => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("BATON_") && k !== "NODE_OPTIONS") env[k] = v;
    Object.assign(env, { BATON_DATABASE_URL: h.db.url, BATON_SECRET_KEY: SECRET_KEY, BATON_LOG_LEVEL: "warn" });
    const baton = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [path.join(ROOT, "bin/baton.js"), ...args], { cwd: ROOT, env, timeout: 30_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const set = await baton(["variables", "set", "vc_cli_key", "value set by the CLI", "--description", "from the CLI"]);
    expect(set).toMatchObject({ code: 0, stdout: "variable vc_cli_key set\n" });
    // The CLI encrypted it with the same key: the API reads it back.
    expect((await call("GET", "/variables/vc_cli_key")).json()).toEqual({ key: "vc_cli_key", value: "value set by the CLI", description: "from the CLI" });
    await call("PATCH", "/variables/vc_cli_key", { value: "changed through the API" });
    const get = await baton(["variables", "get", "vc_cli_key"]);
    expect(get).toMatchObject({ code: 0, stdout: "changed through the API\n" });

    // A key an older Baton stored under the rule before (a tab in it) is read, set and deleted;
    // a new one like it is still refused.
    const old = "vc_cli\told";
    await createVariable(h.db.pool, { key: old, value: "stored before" });
    expect(await baton(["variables", "get", old])).toMatchObject({ code: 0, stdout: "stored before\n" });
    expect(await baton(["variables", "set", old, "set again"])).toMatchObject({ code: 0 });
    expect(await getVariable(h.db.pool, old)).toMatchObject({ value: "set again" });
    expect(await baton(["variables", "delete", old])).toMatchObject({ code: 0 });
    expect(await getVariable(h.db.pool, old)).toBeUndefined();
    const refused = await baton(["variables", "set", "vc_cli\tnew", "v"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(NAME_RULE_DETAIL);
    expect(await getVariable(h.db.pool, "vc_cli\tnew")).toBeUndefined();
  }, 60_000);
});
