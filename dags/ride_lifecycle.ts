// One ride, from request to payment. The run waits for people three times (a driver accepts,
// picks the rider up, ends the trip); each wait is a signal the ride app sends, and costs
// nothing while it lasts. The rider is charged only once the trip is completed.
//
//   request_ride → wait_driver_accepted → wait_picked_up → wait_completed → charge_rider
//        └──────→ wait_cancelled → cancel_ride
//   (no driver within 5 min, or no pickup within 20 min) → release_hold
//
// The ride app sends, e.g.:
//   POST /api/v1/dags/ride_lifecycle/dagRuns/<run_id>/signals/driver_accepted  {"payload": {"driverId": "d-7"}}
//   POST …/signals/picked_up   {"payload": {}}
//   POST …/signals/completed   {"payload": {"fareCents": 1840}}
//   POST …/signals/cancelled   {"payload": {"by": "rider"}}   (offered until pickup)
// Send each with a "signal_id" (the app's event id) so a retried request is delivered once.
import { dag } from "baton";

export default dag(
  {
    id: "ride_lifecycle",
    description: "Request a ride, wait for acceptance, pickup and completion, then charge",
    schedule: null,
    tags: ["example", "signals"],
    defaultArgs: { retries: 3, retryDelay: "5s", retryExponentialBackoff: true, executionTimeout: "1m" },
  },
  (t) => {
    const request = t.task("request_ride", async (ctx) => {
      const rider = String(ctx.conf.rider ?? "rider-1");
      // Authorize (not capture) the fare estimate; keyed so a retry places one hold.
      ctx.log.info(`ride requested by ${rider}; card hold ${ctx.idempotencyKey}; dispatching to nearby drivers`);
      return { rider, holdId: `hold_${ctx.runId}` };
    });

    // No driver within 5 minutes, or no pickup within 20: the wait is skipped, and so is
    // everything after it on the ride path.
    const accepted = t.waitForSignal<{ driverId: string }>("wait_driver_accepted", { signal: "driver_accepted", timeout: "5m", onTimeout: "skip" });
    const pickedUp = t.waitForSignal("wait_picked_up", { signal: "picked_up", timeout: "20m", onTimeout: "skip" });
    // A trip that never ends is a problem for a person: fail (the default) and alert.
    const completed = t.waitForSignal<{ fareCents: number }>("wait_completed", { signal: "completed", timeout: "6h" });

    t.task("charge_rider", { upstream: [request, completed] }, async (ctx) => {
      const { holdId } = ctx.get(request);
      const { fareCents } = ctx.get(completed);
      ctx.log.info(`captured ${fareCents} cents on ${holdId}`);
      return { holdId, fareCents };
    });
    request.then(accepted).then(pickedUp).then(completed);

    // The rider (or the driver) may cancel until pickup: the cancellation window is the
    // 25 minutes the ride path may wait before pickup. After it, this wait is skipped.
    const cancelled = t.waitForSignal<{ by: string }>("wait_cancelled", { signal: "cancelled", timeout: "25m", onTimeout: "skip" });
    request.then(cancelled);
    t.task("cancel_ride", { upstream: [request, cancelled] }, async (ctx) => {
      const { holdId } = ctx.get(request);
      ctx.log.info(`ride cancelled by ${ctx.get(cancelled).by}: driver notified, ${holdId} released`);
    });

    // all_skipped: nobody accepted or the driver never arrived (also after a cancellation;
    // releasing a hold twice is a no-op at the payment provider).
    t.task("release_hold", { upstream: [pickedUp], triggerRule: "all_skipped" }, async (ctx) => {
      ctx.log.info(`no pickup for run ${ctx.runId}: card hold released`);
    });
  },
);
