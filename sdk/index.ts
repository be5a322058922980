/**
 * The public surface DAG authors import as "baton". It must not import anything from
 * store/, executor/, api/ or database drivers: it is bundled into every DAG file.
 */
export { dag, isDag } from "./dag.ts";
export { SkipError, FailError, InvalidDagError, nonRetryable } from "./errors.ts";
export { TRIGGER_RULES } from "./types.ts";
export { fileSensor, httpSensor, sqlSensor, externalTaskSensor, timeDeltaSensor, dateTimeSensor } from "./sensors.ts";
export type {
  ExternalState,
  ExternalTaskSensorOptions,
  FileSensorOptions,
  HttpSensorCommonOptions,
  HttpSensorOptions,
  HttpSensorStatus,
  SensorSettings,
  SqlSensorCell,
  SqlSensorCommonOptions,
  SqlSensorOptions,
} from "./sensors.ts";
export type {
  BranchChoice,
  Connection,
  Dag,
  DagOptions,
  PokeResult,
  RunCallbackContext,
  SensorOptions,
  WaitForSignalOptions,
  DagBuilder,
  Duration,
  DurationString,
  DurationUnit,
  Jsonified,
  TaskContext,
  TaskDefaults,
  TaskFn,
  TaskLogger,
  TaskOptions,
  TaskRef,
  TaskVariables,
  TriggerRule,
} from "./types.ts";
