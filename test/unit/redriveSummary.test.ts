// What `baton dead-letters redrive` prints: the count, then each chosen dead letter it did not re-drive and why,
// so the printout agrees with the answer's dead_letters (a skipped run's letters are not shown as re-driven).
import { idsNotRedriven, redriveSummary } from "../../cli/commands/operations.ts";

const letter = (id: number, run: string, skipped: string | null) => ({ task_instance_id: id, dag_id: "d", dag_run_id: run, task_id: "t", skipped });

it("names each skipped dead letter with its reason after the count", () => {
  expect(redriveSummary({ redriven: 1, dead_letters: [letter(1, "a", null), letter(2, "b", "compensating")] }, false)).toBe(
    're-drove 1 task instance(s)\nskipped task instance 2 ("t" of run "b" of DAG "d"): compensating\n',
  );
});

it("prints only the count when nothing was skipped, on a dry run too", () => {
  expect(redriveSummary({ redriven: 1, dead_letters: [letter(1, "a", null)] }, true)).toBe("would re-drive 1 task instance(s)\n");
});

it("names each id that was no dead letter with its reason, and an unknown id as not found", () => {
  const not = (id: number, reason: string, state: string | null) =>
    state === null
      ? { task_instance_id: id, dag_id: null, dag_run_id: null, task_id: null, state, reason }
      : { task_instance_id: id, dag_id: "d", dag_run_id: "r", task_id: "t", state, reason };
  expect(
    redriveSummary({ redriven: 0, dead_letters: [], not_dead_letters: [not(3, "not_failed", "success"), not(4, "failed_by_operator", "failed"), not(9, "not_found", null)] }, false),
  ).toBe(
    "re-drove 0 task instance(s)\n" +
      'not a dead letter: task instance 3 ("t" of run "r" of DAG "d"): not_failed (its state is success)\n' +
      'not a dead letter: task instance 4 ("t" of run "r" of DAG "d"): failed_by_operator (a cancel or a mark failed it: clear it to run it again)\n' +
      "not a dead letter: task instance 9: not_found (no task instance has this id)\n",
  );
});

it("names the --ids a re-drive left alone, in the order given: no dead letter, or a dead letter it skipped", () => {
  const not = (id: number) => ({ task_instance_id: id, dag_id: null, dag_run_id: null, task_id: null, state: null, reason: "not_found" });
  const answer = { redriven: 1, dead_letters: [letter(1, "a", null), letter(2, "b", "changed")], not_dead_letters: [not(9)] };
  expect(idsNotRedriven([9, 1, 2], answer)).toEqual([9, 2]);
  expect(idsNotRedriven([1], { redriven: 1, dead_letters: [letter(1, "a", null)], not_dead_letters: [] })).toEqual([]);
  // An API older than not_dead_letters: an id it did not choose was not re-driven either.
  expect(idsNotRedriven([1, 7], { redriven: 1, dead_letters: [letter(1, "a", null)] })).toEqual([7]);
});

it("says how many dead letters a batch left: run again for them after a re-drive; on a dry run, that a re-drive takes one batch at a time", () => {
  const batch = Array.from({ length: 10_000 }, (_, i) => letter(i + 1, "a", null));
  const last = (dryRun: boolean) => redriveSummary({ redriven: 10_000, dead_letters: batch, remaining: 42 }, dryRun).trimEnd().split("\n").at(-1);
  expect(last(false)).toBe("42 more dead letter(s) left: run it again for the rest");
  // Running a dry run again answers the same batch: nothing is left "for the rest" by it.
  expect(last(true)).toBe("42 more dead letter(s) beyond this batch: a re-drive takes at most 10,000 at a time");
});
