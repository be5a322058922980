// The message a child runs a try (or a try's callback) from: the try's row and run, its DAG
// version's shape, and what the worker read for it. Pure; shared by the worker's claims and the
// callbacks of reaped tries (tryCallbacks.ts), so both give a task the same ctx.
import type { DagShape } from "../core/dagStructure.ts";
import { taskLogPath } from "../core/logPaths.ts";
import type { RunTryMessage } from "./protocol.ts";

export interface TryOfRun {
  id: number;
  dagId: string;
  runId: string;
  taskId: string;
  mapIndex: number;
  tryNumber: number;
  maxTries: number;
  keyEpoch: number;
  logicalDate: Date | null;
  dataIntervalStart: Date | null;
  dataIntervalEnd: Date | null;
  conf: Record<string, unknown>;
  firstPokeAt?: Date | null;
  pokeCount?: number;
}

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);

export function tryMessage(
  task: TryOfRun,
  shape: DagShape,
  read: { upstreamOutputs: Record<string, unknown>; steps: Record<string, unknown>; bundlePath: string; logsFolder: string; maxValueBytes: number; maxLogBytes: number; clockOffsetMs: number },
): RunTryMessage {
  const spec = shape.byId.get(task.taskId);
  return {
    tiId: task.id,
    dagId: task.dagId,
    runId: task.runId,
    taskId: task.taskId,
    mapIndex: task.mapIndex,
    tryNumber: task.tryNumber,
    maxTries: task.maxTries,
    keyEpoch: task.keyEpoch,
    logicalDate: iso(task.logicalDate),
    dataIntervalStart: iso(task.dataIntervalStart),
    dataIntervalEnd: iso(task.dataIntervalEnd),
    conf: task.conf,
    params: shape.dag.params,
    upstreamOutputs: read.upstreamOutputs,
    steps: read.steps,
    compensates: spec?.compensates ?? null,
    maxValueBytes: read.maxValueBytes,
    firstPokeAt: iso(task.firstPokeAt),
    clockOffsetMs: read.clockOffsetMs,
    pokeCount: task.pokeCount ?? 0,
    bundlePath: read.bundlePath,
    logPath: taskLogPath(read.logsFolder, task),
    maxLogBytes: read.maxLogBytes,
  };
}
