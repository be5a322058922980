// Airflow's state colours (airflow/settings.py STATE_COLORS), so a grid reads like Airflow's.
export const STATE_COLORS: Record<string, string> = {
  none: "transparent",
  scheduled: "tan",
  queued: "gray",
  running: "lime",
  success: "green",
  failed: "red",
  up_for_retry: "gold",
  up_for_reschedule: "turquoise",
  deferred: "mediumpurple",
  skipped: "hotpink",
  upstream_failed: "orange",
  removed: "lightgrey",
  restarting: "violet",
};

/** The states in the legend, in the order a task usually goes through them. */
export const LEGEND = ["none", "scheduled", "queued", "running", "deferred", "up_for_reschedule", "up_for_retry", "success", "failed", "upstream_failed", "skipped", "removed"];

export const stateOf = (s: string | null | undefined) => (s && STATE_COLORS[s] !== undefined ? s : "none");
export const stateLabel = (s: string | null | undefined) => (s ?? "no status").replace(/_/g, " ");
export const isActiveRun = (s: string) => s === "queued" || s === "running";
export const isFinishedTask = (s: string | null) => s === "success" || s === "failed" || s === "skipped" || s === "upstream_failed" || s === "removed";
