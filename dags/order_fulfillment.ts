// An order: charge the payment and reserve inventory in parallel, then create the shipping
// label from both results and confirm. Each side effect is keyed by ctx.idempotencyKey, so
// a retried task never charges twice at a provider that deduplicates by key. If the order
// fails (try it with conf {"failLabel": true}), the saga compensations run in reverse order:
// the inventory is released and the payment refunded, and the run ends failed + compensated.
import { dag, FailError, type TaskRef } from "baton";

export default dag(
  {
    id: "order_fulfillment",
    description: "Charge, reserve, label and confirm an order",
    schedule: null,
    tags: ["example", "saga"],
    defaultArgs: { retries: 3, retryDelay: "1s", retryExponentialBackoff: true, maxRetryDelay: "1m", executionTimeout: "10m" },
  },
  (t) => {
    // Annotated because their compensations read their own output (ctx.get of themselves).
    const charge: TaskRef<{ chargeId: string; amount: number }> = t.task(
      "charge_payment",
      {
        // Runs if the order fails later on (saga compensation): refunds are idempotent too.
        compensate: async (ctx) => ctx.log.info(`refunding ${ctx.get(charge).chargeId} (idempotency key ${ctx.idempotencyKey})`),
      },
      async (ctx) => {
        const amount = Number(ctx.conf.amount ?? 42);
        if (amount <= 0) throw new FailError(`cannot charge ${amount}`); // no point retrying
        ctx.log.info(`charging ${amount} with idempotency key ${ctx.idempotencyKey}`);
        return { chargeId: `ch_${ctx.runId.length}${ctx.tryNumber}`, amount };
      },
    );

    const reserve: TaskRef<{ sku: string; reservationId: string }> = t.task(
      "reserve_inventory",
      { compensate: async (ctx) => ctx.log.info(`releasing reservation ${ctx.get(reserve).reservationId}`) },
      async (ctx) => {
        const sku = String(ctx.conf.sku ?? "A1");
        ctx.log.info(`reserved 1 × ${sku}`);
        return { sku, reservationId: `res_${sku}` };
      },
    );

    const label = t.task("create_shipping_label", { upstream: [charge, reserve] }, async (ctx) => {
      const { chargeId } = ctx.get(charge);
      const { sku } = ctx.get(reserve);
      if (ctx.conf.failLabel) throw new FailError("the carrier rejected the address");
      return { labelId: `lbl_${sku}_${chargeId}`, carrier: "UPS" };
    });

    t.task("confirm", { upstream: [label] }, async (ctx) => {
      const { labelId, carrier } = ctx.get(label);
      ctx.log.info(`order confirmed, shipping with ${carrier} (${labelId})`);
    });
  },
);
