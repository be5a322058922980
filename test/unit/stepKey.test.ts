// A durable step's idempotency key (ctx.step's fn gets it): the task's key (<dag_id>:<run_id>:<task_id>:<map_index>[:e<n>]),
// then the step's name. Step names and run ids may hold ':', so the key must still name one step of one task instance.
import { stepIdempotencyKey } from "../../core/stepKey.ts";

const task = (runId: string, taskId = "charge", mapIndex = -1, epoch = 0) => `d:${runId}:${taskId}:${mapIndex}` + (epoch > 0 ? `:e${epoch}` : "");

describe("stepIdempotencyKey", () => {
  it("keeps the key of a step whose name has no ':' as it was: <task key>:<name>", () => {
    expect(stepIdempotencyKey(task("manual__2026-01-01T00:00:00+00:00"), "pay")).toBe("d:manual__2026-01-01T00:00:00+00:00:charge:-1:pay");
    expect(stepIdempotencyKey(task("r", "charge", -1, 1), "pay 50%")).toBe("d:r:charge:-1:e1:pay 50%");
  });

  it("a step named e1:x in a saga's first attempt and the step x of its next attempt have different keys", () => {
    expect(stepIdempotencyKey(task("r"), "e1:x")).not.toBe(stepIdempotencyKey(task("r", "charge", -1, 1), "x"));
  });

  it("a name with ':' does not take the key of another run's step when run ids hold ':' too", () => {
    expect(stepIdempotencyKey(task("r"), "x:charge:-1:y")).not.toBe(stepIdempotencyKey(task("r:charge:-1:x"), "y"));
    expect(stepIdempotencyKey(task("r"), "a:b")).not.toBe(stepIdempotencyKey(task("r"), "a%3Ab"));
    expect(stepIdempotencyKey(task("r"), "a:b")).not.toBe(stepIdempotencyKey(task("r"), "a%3Ab:"));
  });

  it("is one key per name and attempt: a few names with ':' and '%' map to distinct keys", () => {
    const names = ["a", "a:", ":a", "a:b", "a%3Ab", "a%253Ab", "a%:b", "a:%b", "e1:x", "x", "%", ":", "::", "%3A"];
    const keys = [0, 1, 2].flatMap((epoch) => names.map((n) => stepIdempotencyKey(task("r", "charge", -1, epoch), n)));
    expect(new Set(keys).size).toBe(names.length * 3);
    expect(stepIdempotencyKey(task("r", "charge", -1, 1), "a:b%")).toBe("d:r:charge:-1:e1:a%3Ab%25:");
  });
});
