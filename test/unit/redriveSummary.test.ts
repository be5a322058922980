// What `baton dead-letters redrive` prints: the count, then each chosen dead letter it did not re-drive and why,
// so the printout agrees with the answer's dead_letters (a skipped run's letters are not shown as re-driven).
import { redriveSummary } from "../../cli/commands/operations.ts";

const letter = (id: number, run: string, skipped: string | null) => ({ task_instance_id: id, dag_id: "d", dag_run_id: run, task_id: "t", skipped });

it("names each skipped dead letter with its reason after the count", () => {
  expect(redriveSummary({ redriven: 1, dead_letters: [letter(1, "a", null), letter(2, "b", "compensating")] }, false)).toBe(
    're-drove 1 task instance(s)\nskipped task instance 2 ("t" of run "b" of DAG "d"): compensating\n',
  );
});

it("prints only the count when nothing was skipped, on a dry run too", () => {
  expect(redriveSummary({ redriven: 1, dead_letters: [letter(1, "a", null)] }, true)).toBe("would re-drive 1 task instance(s)\n");
});
