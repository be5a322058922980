import type { TryError } from "../store/transitions/finishTries.ts";

/** What the worker sends a child to run one try. Dates travel as ISO strings. */
export interface RunTryMessage {
  tiId: number;
  dagId: string;
  runId: string;
  taskId: string;
  mapIndex: number;
  tryNumber: number;
  maxTries: number;
  logicalDate: string | null;
  dataIntervalStart: string | null;
  dataIntervalEnd: string | null;
  conf: Record<string, unknown>;
  params: Record<string, unknown>;
  upstreamOutputs: Record<string, unknown>;
  bundlePath: string;
  logPath: string;
}

export interface TryOutcome {
  outcome: "success" | "failed" | "skipped";
  output?: unknown;
  error?: TryError;
  /** Tasks a successful branch / short-circuit task decided to skip. */
  skipTasks?: string[];
}

/** A DAG-level callback for a run that ended; run by the worker that recorded the end. */
export interface DagCallbackMessage {
  dagId: string;
  runId: string;
  state: "success" | "failed";
  logicalDate: string | null;
  conf: Record<string, unknown>;
  bundlePath: string;
  logPath: string;
}
