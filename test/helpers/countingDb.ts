// countingDb: a Db whose transactions write down each round trip ("run", "commit", "run+commit",
// "run (no commit)", "rollback"): tests of finishTries' one-round-trip hop read how a finish went.
import type { BatchTx, Db } from "../../store/db.ts";

export function countingDb(db: Db, trips: string[]): Db {
  const wrap = (btx: BatchTx): BatchTx => ({
    get conn() {
      return btx.conn;
    },
    get conditionalCommit() {
      return btx.conditionalCommit;
    },
    run: (s) => (trips.push("run"), btx.run(s)),
    commit: (s) => (trips.push("commit"), btx.commit(s)),
    runCommittingIf: async (s, condition, then, otherwise) => {
      const answer = await btx.runCommittingIf(s, condition, then, otherwise);
      trips.push(answer.committed ? "run+commit" : "run (no commit)");
      return answer;
    },
    rollback: () => (trips.push("rollback"), btx.rollback()),
  });
  return { ...db, batchTx: (fn) => db.batchTx((btx) => fn(wrap(btx))) };
}
