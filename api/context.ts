import type { Clock } from "../core/clock.ts";
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/logger.ts";
import type { Db } from "../store/db.ts";

/** What every route plugin gets; the API holds no state of its own. */
export interface ApiDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  config: Pick<Config, "logsFolder">;
  /** A run was created: in `standalone`, wakes the in-process scheduler. */
  onRunCreated?: () => void;
  /** Task instances were queued (a clear): in `standalone`, wakes the in-process worker. */
  onTasksQueued?: () => void;
}
