// An order: charge the payment and reserve inventory in parallel, then create the shipping
// label from both results and confirm. Each side effect is keyed by ctx.idempotencyKey, so
// a retried task never charges twice at a provider that deduplicates by key.
import { dag, FailError } from "baton";

export default dag(
  {
    id: "order_fulfillment",
    description: "Charge, reserve, label and confirm an order",
    schedule: null,
    tags: ["example", "saga"],
    defaultArgs: { retries: 3, retryDelay: "1s", retryExponentialBackoff: true, maxRetryDelay: "1m", executionTimeout: "10m" },
  },
  (t) => {
    const charge = t.task(
      "charge_payment",
      {
        // Runs if the order fails later on (saga compensation): refunds are idempotent too.
        compensate: async (ctx) => ctx.log.info(`refunding charge for ${ctx.idempotencyKey}`),
      },
      async (ctx) => {
        const amount = Number(ctx.conf.amount ?? 42);
        if (amount <= 0) throw new FailError(`cannot charge ${amount}`); // no point retrying
        ctx.log.info(`charging ${amount} with idempotency key ${ctx.idempotencyKey}`);
        return { chargeId: `ch_${ctx.runId.length}${ctx.tryNumber}`, amount };
      },
    );

    const reserve = t.task("reserve_inventory", async (ctx) => {
      const sku = String(ctx.conf.sku ?? "A1");
      ctx.log.info(`reserved 1 × ${sku}`);
      return { sku, reservationId: `res_${sku}` };
    });

    const label = t.task("create_shipping_label", { upstream: [charge, reserve] }, async (ctx) => {
      const { chargeId } = ctx.get(charge);
      const { sku } = ctx.get(reserve);
      return { labelId: `lbl_${sku}_${chargeId}`, carrier: "UPS" };
    });

    t.task("confirm", { upstream: [label] }, async (ctx) => {
      const { labelId, carrier } = ctx.get(label);
      ctx.log.info(`order confirmed, shipping with ${carrier} (${labelId})`);
    });
  },
);
