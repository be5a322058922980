// A contract goes out for e-signature and the signer has 5 days. If they have not signed by
// then, a reminder goes out and they get 2 more days; a signed document is filed, an unsigned
// one is voided. While it waits, the run holds no worker slot and no process: the wait is a
// row in MySQL, and a signature wakes it within a second.
//
// Trigger:  POST /api/v1/dags/document_signing/dagRuns
//           {"conf": {"document": "msa-2026.pdf", "signer": "ana@example.com"}}
// The e-signature provider's webhook (or `baton signal document_signing <run_id> signed`):
//           POST /api/v1/dags/document_signing/dagRuns/<run_id>/signals/signed
//           {"payload": {"signedBy": "ana@example.com"}, "signal_id": "<the webhook's event id>"}
// signal_id makes webhook retries harmless; a signature that arrives while the reminder is
// being sent is kept and delivered to the second wait.
import { dag } from "baton";

interface Signature {
  signedBy: string;
}

export default dag(
  {
    id: "document_signing",
    description: "Send a document for signature, remind after 5 days, file it once signed",
    schedule: null,
    tags: ["example", "signals"],
    defaultArgs: { retries: 3, retryDelay: "30s", retryExponentialBackoff: true, executionTimeout: "5m" },
  },
  (t) => {
    const send = t.task("send_for_signature", async (ctx) => {
      const document = String(ctx.conf.document ?? "contract.pdf");
      const signer = String(ctx.conf.signer ?? "signer@example.com");
      // The provider deduplicates on our key, so a retried try never sends twice.
      ctx.log.info(`sent ${document} to ${signer} (request ${ctx.idempotencyKey})`);
      return { document, signer };
    });

    // onTimeout "skip": after 5 days the wait is skipped, which is what sends the reminder.
    const signed = t.waitForSignal<Signature>("wait_for_signature", { signal: "signed", timeout: "5d", onTimeout: "skip" });

    // all_skipped: runs only when the first wait timed out (it is skipped once the document is signed).
    const remind = t.task("send_reminder", { triggerRule: "all_skipped" }, async (ctx) => {
      ctx.log.info(`reminder sent for run ${ctx.runId}`);
    });

    const signedLate = t.waitForSignal<Signature>("wait_after_reminder", { signal: "signed", timeout: "2d", onTimeout: "skip" });

    send.then(signed).then(remind).then(signedLate);

    // Runs when either wait got the signature (the other one is skipped).
    t.task("file_document", { upstream: [signed, signedLate], triggerRule: "none_failed_min_one_success" }, async (ctx) => {
      const document = String(ctx.conf.document ?? "contract.pdf");
      const { signedBy } = ctx.get(signed) ?? ctx.get(signedLate);
      ctx.log.info(`filed ${document}, signed by ${signedBy}`);
      return { document, signedBy };
    });

    // Neither wait got a signature: withdraw the request.
    t.task("void_request", { upstream: [signed, signedLate], triggerRule: "all_skipped" }, async (ctx) => {
      ctx.log.info(`no signature after 7 days and a reminder: request voided`);
    });
  },
);
