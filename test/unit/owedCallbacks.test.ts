import { owedCallback } from "../../scheduler/owedCallbacks.ts";

describe("owedCallback", () => {
  it("owes onRetry for a retried try and onFailure for a failed one, when the task has it", () => {
    const both = { callbacks: { onRetry: true, onFailure: true } };
    expect(owedCallback(both, "up_for_retry")).toBe("onRetry");
    expect(owedCallback(both, "failed")).toBe("onFailure");
    expect(owedCallback({ callbacks: { onRetry: false, onFailure: true } }, "up_for_retry")).toBeNull();
    expect(owedCallback({ callbacks: { onRetry: true, onFailure: false } }, "failed")).toBeNull();
  });

  it("owes it when an older version did not record callbacks, and nothing for a task its version lacks", () => {
    expect(owedCallback({}, "failed")).toBe("onFailure");
    expect(owedCallback(undefined, "failed")).toBeNull();
  });
});
