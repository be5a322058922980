// The held API of the CLI tests (test/helpers/cli.ts) ran its hooks with `.catch(() => undefined)`:
// an expect inside a `before` hook failed unseen, and a `hold` whose condition passed its deadline
// let the CLI get its answer early, so a CLI printing what it read after the answer (the bug those
// tests guard against) passed as well. A hook's failure now makes close() reject, and what each
// hook settled to is kept for the test to check.
import Fastify from "fastify";
import { heldApi as openHeldApi, type HeldApi } from "../helpers/cli.ts";

const app = Fastify();
app.get("/ok", async () => ({ ok: true }));
app.get("/missing", async (_req, reply) => reply.code(404).send({ code: "NOPE" }));
const opened: HeldApi[] = [];
async function heldApi(...args: Parameters<typeof openHeldApi>): Promise<HeldApi> {
  const api = await openHeldApi(...args);
  opened.push(api);
  return api;
}
beforeAll(() => app.ready());
// Closed again even when a test failed before its own close(); a second close() only reports again.
afterEach(() => Promise.allSettled(opened.splice(0).map((api) => api.close())));
afterAll(() => app.close());

it("answers through the app, keeps what each hook settled to, and close() rejects with a hook's failure", async () => {
  const api = await heldApi(app, {
    before: (req) => (req.url === "/missing" ? Promise.reject(new Error("expected 200, got 404")) : undefined),
    hold: (req) => (req.url === "/ok" ? Promise.resolve("success") : undefined),
  });
  const ok = await fetch(`${api.url}/ok`);
  expect({ status: ok.status, body: await ok.json() }).toEqual({ status: 200, body: { ok: true } });
  // A failed hook does not keep the answer back: the CLI still exits.
  const missing = await fetch(`${api.url}/missing`);
  expect(missing.status).toBe(404);
  await missing.text();
  expect(api.outcomes).toEqual([
    { hook: "hold", method: "GET", url: "/ok", value: "success" },
    { hook: "before", method: "GET", url: "/missing", error: expect.any(Error) },
  ]);
  await expect(api.close()).rejects.toThrow("heldApi: the before hook of GET /missing failed: expected 200, got 404");
});

it("close() resolves when every hook succeeded", async () => {
  const api = await heldApi(app, { hold: () => Promise.resolve(1) });
  await (await fetch(`${api.url}/ok`)).text();
  expect(api.outcomes).toEqual([{ hook: "hold", method: "GET", url: "/ok", value: 1 }]);
  await expect(api.close()).resolves.toBeUndefined();
});
