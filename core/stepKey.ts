/**
 * The idempotency key ctx.step(name, fn) hands `fn`: the task's key
 * (`<dag_id>:<run_id>:<task_id>:<map_index>[:e<n>]`, unambiguous: dag and task ids have no ':',
 * and the last part is a map index or `e<n>`), then the step's name.
 *
 * A name without ':' follows as it is (`<task key>:<name>`, the key steps always had, so a step
 * of a run in flight that runs again keeps its key). A name with ':' could make another step's
 * key: "e1:x" of a saga's first attempt was "x" of its next (`…:e1:x`), and run ids hold ':' too;
 * it follows with '%' and ':' escaped (%25, %3A) and a closing ':'. No key of a name without ':'
 * ends with ':' (names are not empty), and the escaped name has no ':', so each key names one
 * step of one task instance.
 */
export function stepIdempotencyKey(taskKey: string, name: string): string {
  if (!name.includes(":")) return `${taskKey}:${name}`;
  return `${taskKey}:${name.replaceAll("%", "%25").replaceAll(":", "%3A")}:`;
}
