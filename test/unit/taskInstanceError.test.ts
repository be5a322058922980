// A TaskInstance's `error` is its current try's: shown once that try has ended (a retry waits, or a
// state the instance keeps), never while the next try is queued or under way, though the row still
// holds the failed try's error then (the claim does not clear it).
import { taskInstanceJson } from "../../api/serializers.ts";
import { TaskState } from "../../core/states.ts";
import type { RowDataPacket } from "../../store/db.ts";

const FAILED_TRY = JSON.stringify({ name: "Error", message: "first try broke" });

const row = (state: string) =>
  ({ task_id: "t", dag_id: "d", run_id: "r", map_index: -1, state, try_number: 2, max_tries: 2, pool: "default_pool", pool_slots: 1, queue: "default", priority_weight: 1, trigger_rule: "all_success", error: FAILED_TRY }) as unknown as RowDataPacket;

it.each([TaskState.UpForRetry, TaskState.Failed, TaskState.Success, TaskState.Skipped, TaskState.UpstreamFailed, TaskState.Removed])(
  "shows the error of a try that has ended (%s)",
  (state) => {
    expect(taskInstanceJson(row(state), null).error).toEqual({ name: "Error", message: "first try broke" });
  },
);

it.each([TaskState.None, TaskState.Scheduled, TaskState.Queued, TaskState.Running, TaskState.Deferred, TaskState.UpForReschedule])(
  "shows no earlier try's error while a try is on its way (%s)",
  (state) => {
    expect(taskInstanceJson(row(state), null).error).toBeNull();
  },
);
