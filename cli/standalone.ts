import { runServices, type ServiceFlags } from "./services.ts";

export type StandaloneFlags = ServiceFlags;

/** Everything in one process: migrate, DAG processor, scheduler, API and local workers. */
export function standalone(flags: StandaloneFlags): Promise<void> {
  return runServices("standalone", { dagProcessor: true, scheduler: true, worker: true, api: true }, flags);
}
